// Preloaded (`node --import`) into the server schemathesis runs against: its outbound `fetch`
// reaches loopback only. The admin's runs point providers at generated URLs and at presets'
// real endpoints; those requests fail here as an unreachable host would (a TypeError, as
// undici's "fetch failed"), so a fuzz run never sends anything off this machine.
const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/;
const realFetch = globalThis.fetch;

globalThis.fetch = (input, init) => {
  const url = new globalThis.URL(input instanceof globalThis.Request ? input.url : String(input));
  if (!LOOPBACK.test(url.hostname)) {
    return Promise.reject(new TypeError('fetch failed', { cause: new Error('not loopback') }));
  }
  return realFetch(input, init);
};
