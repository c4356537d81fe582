/**
 * How HttpStore trusts a server: by pinning the SHA-256 fingerprint of its
 * certificate (the usual case: obnam-server makes a self-signed one), by a CA
 * file, or by the system's CAs.
 *
 * A pinned connection completes the TLS handshake, compares the certificate's
 * fingerprint, and only then hands the socket to the HTTP agent; a request
 * (with its token and body) is never written to a socket whose certificate
 * has not been checked.
 */
import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import * as https from 'node:https';
import * as tls from 'node:tls';
import { ObnamError } from '../errors.js';

/**
 * Normalises a fingerprint as people paste it: 64 hex digits, with or without
 * colons (or spaces), any case, optionally with openssl's "sha256
 * Fingerprint=" in front. Returns lowercase hex; USAGE if it is not one.
 */
export function parseFingerprint(s: string): string {
  const hex = s
    .trim()
    .replace(/^sha-?256\s+fingerprint\s*=\s*/i, '')
    .replace(/[:\s]/g, '')
    .toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new ObnamError(
      'USAGE',
      `server fingerprint ${JSON.stringify(s.slice(0, 120))} is not a SHA-256 fingerprint (64 hex digits, colons optional)`,
    );
  }
  return hex;
}

/** The fingerprint in the form openssl and obnam-server print: AB:CD:... */
export function formatFingerprint(hex: string): string {
  return (hex.toUpperCase().match(/../g) ?? []).join(':');
}

/** SHA-256 fingerprint (lowercase hex) of a DER-encoded certificate. */
export function certFingerprint(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}

/** An HTTPS agent that accepts exactly the server certificate with this fingerprint. */
export class PinnedAgent extends https.Agent {
  constructor(
    options: https.AgentOptions,
    private readonly pin: string,
  ) {
    // With a CA as well, the chain must also verify; with a pin alone the
    // pin is the whole check (it is stronger than a CA and a host name).
    super({ ...options, rejectUnauthorized: !!options.ca, maxCachedSessions: 0 });
  }

  override createConnection(options: https.RequestOptions, callback?: (err: Error | null, stream: Duplex) => void): undefined {
    const socket = tls.connect(options as tls.ConnectionOptions);
    // Errors after the hand-over reach the request through its own listener.
    socket.on('error', () => undefined);
    const onError = (e: Error) => callback?.(e, socket);
    socket.once('error', onError);
    socket.once('secureConnect', () => {
      socket.off('error', onError);
      const der = socket.getPeerCertificate()?.raw;
      const actual = der ? certFingerprint(der) : undefined;
      if (actual !== this.pin) {
        socket.destroy();
        callback?.(
          new ObnamError(
            'TLS',
            `the server's certificate does not match the expected fingerprint: expected ${formatFingerprint(this.pin)}, ` +
              `the server has ${actual ? formatFingerprint(actual) : 'no certificate'} ` +
              '(check --server-fingerprint, OBNAM_SERVER_FINGERPRINT or server_fingerprint in the config)',
          ),
          socket,
        );
        return;
      }
      callback?.(null, socket);
    });
    return undefined;
  }
}
