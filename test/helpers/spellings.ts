/** Every spelling a canary could be written in. */
export function spellings(secret: string): string[] {
  const out = new Set([
    secret,
    encodeURIComponent(secret),
    encodeURIComponent(secret).replace(/%20/g, '+'),
    secret.replace(/ /g, '+'),
  ]);
  for (const pad of ['', 'x', 'xx']) {
    const b64 = Buffer.from(pad + secret).toString('base64');
    out.add(b64.slice(4, -4)); // the part independent of the padding's alignment
  }
  out.add(Buffer.from(secret).toString('hex'));
  return [...out];
}
