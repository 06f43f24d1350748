/** A refusal or failure of the destination, with the server's own code and description when it gave one. */
export class RtmpError extends Error {
  constructor(
    message: string,
    readonly code?: string,
    readonly description?: string,
  ) {
    super(message);
    this.name = 'RtmpError';
  }
}

/** The server refused `connect`: where it asks for authentication. */
export class ConnectRefused extends RtmpError {
  constructor(error: RtmpError) {
    super(error.message, error.code, error.description);
  }
}
