// The TLS material of the harness's HTTPS servers, made by openssl as an operator would: a private
// CA, a server certificate for 127.0.0.1, and two client certificates of the same CA (the one a
// service client is bound to, and another that must not do instead). Keys are P-256: fast to make.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Certificates {
  /** The CA's certificate: what a client must trust. */
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  /** The client certificate service clients are bound to (subject CN `scenario-worker`). */
  clientCertFile: string;
  clientKeyFile: string;
  /** SHA-256 fingerprint of the client certificate, as the API's `certificate.sha256` takes it. */
  clientSha256: string;
  clientSubjectCn: string;
  /** Another client certificate of the same CA (CN `scenario-other-worker`). */
  otherCertFile: string;
  otherKeyFile: string;
}

export function makeCertificates(dir: string): Certificates {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(
    'req',
    '-x509',
    ...ecKey,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=Tokenwarden scenario CA',
  );
  const issue = (name: string, cn: string, extensions: string) => {
    openssl(
      'req',
      '-new',
      ...ecKey,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${cn}`,
    );
    writeFileSync(join(dir, `${name}.ext`), extensions);
    openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-out',
      `${name}.pem`,
      '-extfile',
      `${name}.ext`,
    );
  };
  issue(
    'server',
    'tokenwarden-scenarios',
    'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n',
  );
  issue('client', 'scenario-worker', 'extendedKeyUsage=clientAuth\n');
  issue('other', 'scenario-other-worker', 'extendedKeyUsage=clientAuth\n');
  const file = (name: string) => join(dir, name);
  return {
    caFile: file('ca.pem'),
    serverCertFile: file('server.pem'),
    serverKeyFile: file('server.key'),
    clientCertFile: file('client.pem'),
    clientKeyFile: file('client.key'),
    clientSha256: new X509Certificate(readFileSync(file('client.pem'))).fingerprint256,
    clientSubjectCn: 'scenario-worker',
    otherCertFile: file('other.pem'),
    otherKeyFile: file('other.key'),
  };
}
