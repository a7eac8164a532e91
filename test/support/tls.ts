// A self-signed certificate for 127.0.0.1 and localhost (made once per test process, by the
// `selfsigned` dev dependency), and HTTPS clients that trust it: tests of earshot serving HTTPS and WSS.
import { request } from 'node:https';
import { Readable } from 'node:stream';
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

/**
 * A `fetch` over HTTPS that trusts `ca` alone (the certificate is verified, against it): for the OpenAI
 * SDK's `fetch` option. Node's own fetch cannot be given a CA without undici, which is not a dependency.
 */
export function fetchTrusting(ca: string): typeof fetch {
  return async (input, init) => {
    const asked = new Request(input, init);
    const body = asked.body ? Buffer.from(await asked.arrayBuffer()) : undefined;
    return new Promise<Response>((resolve, reject) => {
      const sent = request(
        asked.url,
        { method: asked.method, headers: Object.fromEntries(asked.headers), ca, agent: false, signal: asked.signal },
        (response) => {
          const headers = new Headers();
          for (const [name, value] of Object.entries(response.headers)) {
            for (const one of Array.isArray(value) ? value : [value ?? '']) headers.append(name, one);
          }
          const status = response.statusCode ?? 0;
          const empty = status === 204 || status === 304 || asked.method === 'HEAD';
          if (empty) response.resume();
          resolve(
            new Response(empty ? null : (Readable.toWeb(response) as ReadableStream<Uint8Array>), {
              status,
              statusText: response.statusMessage ?? '',
              headers,
            }),
          );
        },
      );
      sent.on('error', reject);
      sent.end(body);
    });
  };
}
