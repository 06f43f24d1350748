import { connect as netConnect, isIP, type Socket } from 'node:net';
import { checkServerIdentity, connect as tlsConnect, type SecureContext } from 'node:tls';
import { RtmpError } from './errors.js';

/** Where and how to open the connection to an RTMP server. */
export interface SocketOptions {
  protocol: 'rtmp' | 'rtmps';
  /** The address to connect to (already resolved and checked). */
  address: string;
  port: number;
  /** The destination's host name: TLS server name (SNI) and the name its certificate must carry. */
  host: string;
  localAddress?: string;
  secureContext?: SecureContext;
}

/**
 * Opens TCP, or TLS with the host name as SNI and its certificate checked for that name, within
 * `timeoutMs`. Once open, errors are reported through the socket's close.
 */
export function openSocket(options: SocketOptions, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const common = { host: options.address, port: options.port, localAddress: options.localAddress, noDelay: true };
    const socket =
      options.protocol === 'rtmps'
        ? tlsConnect({
            ...common,
            servername: isIP(options.host) ? undefined : options.host,
            secureContext: options.secureContext,
            checkServerIdentity: (_name, cert) => checkServerIdentity(options.host, cert),
          })
        : netConnect(common);
    const ready = options.protocol === 'rtmps' ? 'secureConnect' : 'connect';
    const timer = setTimeout(
      () => socket.destroy(new RtmpError(`could not connect within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.once(ready, () => {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.on('error', () => {
        // Reported through 'close'.
      });
      resolve(socket);
    });
    const onError = (error: Error): void => {
      clearTimeout(timer);
      reject(error);
    };
    socket.once('error', onError);
  });
}
