import { S3Server } from '../kit/s3-server.js';

/*
 * An S3-compatible server (s3rver) in a process of its own, for measuring what an upload costs the
 * process that uploads without the server's share in it: sends its endpoint and bucket to its
 * parent, and stops (its folder removed) when told to or when the parent goes.
 */
const server = await S3Server.start();
const stop = (): void => void server.stop().finally(() => process.exit(0));
process.on('message', stop);
process.on('disconnect', stop);
process.send!({ endpoint: server.endpoint, bucket: server.bucket });
