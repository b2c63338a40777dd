// `serve`'s TLS: the certificate, its key and an optional client CA, read from files at start and
// again on SIGHUP, so that a renewed certificate is served to new connections without a restart
// (connections already open finish on the one they began with).
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Server as HttpsServer, ServerOptions } from 'node:https';
import { CliError } from './errors.ts';

export interface TlsFiles {
  cert: string;
  key: string;
  /** When set, every connection must present a client certificate this CA issued. */
  clientCa?: string;
}

export interface TlsSettings {
  files: TlsFiles;
  options: ServerOptions;
  /** For the start-up line: whose certificate, until when. Never key material. */
  summary: string;
}

/** Reads and checks the files; a CliError names the file and what is wrong with it. */
export function readTls(files: TlsFiles): TlsSettings {
  const cert = readPem(files.cert, '--tls-cert');
  const key = readPem(files.key, '--tls-key');
  const ca = files.clientCa === undefined ? undefined : readPem(files.clientCa, '--tls-client-ca');
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch {
    throw new CliError(`--tls-cert ${files.cert} is not a PEM certificate`);
  }
  let matches = false;
  try {
    matches = certificate.checkPrivateKey(createPrivateKey(key));
  } catch {
    throw new CliError(
      `--tls-key ${files.key} is not a PEM private key (an encrypted key is not supported)`,
    );
  }
  if (!matches) {
    throw new CliError(`--tls-key ${files.key} is not the private key of --tls-cert ${files.cert}`);
  }
  const options: ServerOptions = {
    cert,
    key,
    minVersion: 'TLSv1.2',
    ...(ca === undefined ? {} : { ca, requestCert: true, rejectUnauthorized: true }),
  };
  const summary =
    `TLS on: ${certificate.subject.replaceAll('\n', ', ')}, valid until ` +
    `${new Date(certificate.validTo).toISOString()}` +
    (ca === undefined ? '' : '; client certificates required');
  return { files, options, summary };
}

/**
 * Re-reads the files on SIGHUP and hands the new certificate to the server. A file that does not
 * read or check keeps the certificate in use, and says why.
 */
export function reloadOnSighup(
  server: HttpsServer,
  settings: TlsSettings,
  report: (message: string) => void,
): () => void {
  const onHangup = () => {
    try {
      const next = readTls(settings.files);
      server.setSecureContext(next.options);
      report(`SIGHUP: new connections get the re-read certificate (${next.summary}).`);
    } catch (error) {
      report(`SIGHUP: kept the certificate in use: ${(error as Error).message}`);
    }
  };
  process.on('SIGHUP', onHangup);
  return () => process.off('SIGHUP', onHangup);
}

function readPem(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    const code = (error as { code?: string }).code ?? 'error';
    throw new CliError(`${flag} ${path} could not be read (${code})`);
  }
}
