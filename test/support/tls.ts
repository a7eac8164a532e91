// A self-signed certificate for 127.0.0.1 and localhost (made once per test process, by the
// `selfsigned` dev dependency), and HTTPS GETs that trust it: tests of earshot serving HTTPS and WSS.
import { request } from 'node:https';
import { generate } from 'selfsigned';

export interface Certificate {
  /** PEM certificate; also the CA a client trusts it with. */
  cert: string;
  /** PEM private key. */
  key: string;
}

let made: Promise<Certificate> | undefined;

/** CN localhost, with 127.0.0.1 among its names (selfsigned's default for localhost). */
export function selfSignedCertificate(): Promise<Certificate> {
  made ??= generate([{ name: 'commonName', value: 'localhost' }], {
    keySize: 2048,
    algorithm: 'sha256',
  }).then((pems) => ({ cert: pems.cert, key: pems.private }));
  return made;
}

/** GET over HTTPS trusting `ca` alone: the status and the body. */
export function httpsGet(
  url: string,
  ca: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const get = request(url, { ca, headers, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    get.on('error', reject);
    get.end();
  });
}
