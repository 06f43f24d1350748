import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { keyframeCached } from '../helpers/pushes.js';
import t from 'tap';
import { RtmpReceiver } from '../../kit/rtmp-receiver.js';
import { syntheticPublish } from '../helpers/synthetic.js';

// The OpenAPI document: valid OpenAPI 3.1, and real answers of every documented route (a real
// publisher over WHIP, a real RTMP destination) have a documented status and match its schema.

const KEY = 'openapi-control-key-0123456789';

type Doc = {
  paths: Record<
    string,
    Record<string, { responses: Record<string, { content?: Record<string, { schema: object }> }> }>
  >;
};

t.test('the document is OpenAPI 3.1 and every answer matches it', async (t) => {
  const destination = await RtmpReceiver.start();
  t.teardown(() => destination.close());
  const { gw } = await syntheticPublish(
    t,
    { api_keys: [{ id: 'ops', secret: KEY, scope: ['control', 'metrics'] }], destination_allow_loopback: true },
    'cam',
  );
  const doc = (await (await fetch(`${gw.baseUrl}/openapi.json`)).json()) as Doc;
  const validation = await new Validator().validate(doc as never);
  t.ok(validation.valid, `valid OpenAPI 3.1 ${JSON.stringify(validation.errors ?? '').slice(0, 500)}`);
  t.equal((doc as unknown as { openapi: string }).openapi, '3.1.0');

  const docs = await fetch(`${gw.baseUrl}/docs`);
  t.equal(docs.status, 200);
  t.match(await docs.text(), /swagger-ui-bundle\.js/);
  t.equal(
    (await fetch(`${gw.baseUrl}/docs/swagger-ui-bundle.js`)).status,
    200,
    'the UI is served from the package, no network',
  );

  const ajv = new Ajv2020({ strict: false });
  const checked = new Set<string>();
  async function check(
    method: string,
    path: string,
    template: string,
    body?: unknown,
    options: { key?: boolean; type?: string; raw?: string } = {},
  ): Promise<{ status: number; json?: any }> {
    const headers: Record<string, string> = { 'content-type': options.type ?? 'application/json' };
    if (options.key !== false) headers.authorization = `Bearer ${KEY}`;
    const res = await fetch(gw.baseUrl + path, {
      method,
      headers,
      body: options.raw ?? (body === undefined ? undefined : JSON.stringify(body)),
    });
    const operation = doc.paths[template]?.[method.toLowerCase()];
    t.ok(operation, `${method} ${template} is documented`);
    const documented = operation?.responses[String(res.status)];
    t.ok(documented, `${method} ${path}: ${res.status} is documented`);
    const type = (res.headers.get('content-type') ?? '').split(';')[0]!;
    let json: any;
    if (type === 'application/json') {
      json = await res.json();
      const schema = documented?.content?.['application/json']?.schema;
      t.ok(schema, `${method} ${path} ${res.status}: a JSON body is documented`);
      if (schema) {
        const valid = ajv.validate(schema, json);
        t.ok(valid, `${method} ${path} ${res.status} matches its schema ${valid ? '' : ajv.errorsText()}`);
      }
    } else {
      await res.arrayBuffer();
      if (type)
        t.ok(
          documented?.content?.[type] ?? res.status === 200,
          `${method} ${path} ${res.status}: ${type} is documented`,
        );
    }
    checked.add(`${method} ${template} ${res.status}`);
    return { status: res.status, json };
  }

  await keyframeCached(gw, 'cam'); // for the push and the snapshot
  const started = await check('POST', '/rest-api/push/startup', '/rest-api/push/startup', {
    streamName: 'cam',
    rtmpUrl: destination.url(),
  });
  t.equal(started.status, 200);
  const id = started.json.mediaSessionId as string;
  await check('POST', '/rest-api/push/startup', '/rest-api/push/startup', {
    streamName: 'cam',
    rtmpUrl: destination.url(),
  }); // 409
  await check('POST', '/rest-api/push/startup', '/rest-api/push/startup', {
    streamName: 'cam',
    rtmpUrl: 'rtmp://127.0.0.1:1/live',
  }); // 500
  await check('POST', '/rest-api/push/startup', '/rest-api/push/startup', {
    streamName: 'nobody',
    rtmpUrl: destination.url(),
  }); // 404
  await check('POST', '/rest-api/push/startup', '/rest-api/push/startup', { streamName: 'cam' }); // 400
  await check(
    'POST',
    '/rest-api/push/startup',
    '/rest-api/push/startup',
    { streamName: 'cam', rtmpUrl: destination.url() },
    { key: false },
  ); // 401
  for (const body of [{ rtmpUrl: destination.url() }, { rtmpUrl: 'rtmp://127.0.0.1:1/live' }, { rtmpUrl: 'ftp://x' }])
    await check('POST', '/rest-api/push/check', '/rest-api/push/check', body); // 200, 200 (not ok), 400
  await check('POST', '/rest-api/push/check', '/rest-api/push/check', { rtmpUrl: destination.url() }, { key: false }); // 401
  for (const path of ['find', 'find_all'])
    await check(
      'POST',
      `/rest-api/push/${path}`,
      `/rest-api/push/${path}`,
      path === 'find' ? { streamName: 'cam' } : {},
    );
  await check('POST', '/rest-api/push/find', '/rest-api/push/find', { streamName: 'nobody' });
  await check('POST', '/rest-api/push/find', '/rest-api/push/find', { bogus: 1 });
  for (const command of ['mute', 'unmute', 'sound_off'])
    await check('POST', `/rest-api/push/${command}`, `/rest-api/push/${command}`, { mediaSessionId: id });
  await check('POST', '/rest-api/push/sound_on', '/rest-api/push/sound_on', {
    mediaSessionId: id,
    soundFile: 'chime.wav',
  });
  await check('POST', '/rest-api/push/mute', '/rest-api/push/mute', { mediaSessionId: 'nope' });
  await check('POST', '/rest-api/stream/find', '/rest-api/stream/find', { name: 'cam' });
  await check('POST', '/rest-api/stream/find', '/rest-api/stream/find', { name: 'nobody' });
  await check('POST', '/rest-api/stream/find', '/rest-api/stream/find', {});
  await check('POST', '/rest-api/stream/find_all', '/rest-api/stream/find_all', {});
  await check('POST', '/rest-api/stream/snapshot', '/rest-api/stream/snapshot', { name: 'cam' });
  await check('POST', '/rest-api/stream/snapshot', '/rest-api/stream/snapshot', { name: 'nobody' });
  await check('GET', '/rest-api/stream/thumbnail?streamName=cam', '/rest-api/stream/thumbnail'); // 404: off
  await check('GET', '/rest-api/stream/thumbnail?streamName=', '/rest-api/stream/thumbnail'); // 400
  await check('POST', '/rest-api/stream/caption', '/rest-api/stream/caption', { streamName: 'cam', text: 'Hello.' });
  await check('POST', '/rest-api/stream/caption', '/rest-api/stream/caption', { streamName: 'nobody', text: 'Hello.' }); // 404
  await check('POST', '/rest-api/stream/caption', '/rest-api/stream/caption', { streamName: 'cam', text: 'a\tb' }); // 400
  await check('POST', '/rest-api/push/terminate', '/rest-api/push/terminate', { mediaSessionId: id });
  const mixer = (path: string, body: unknown): ReturnType<typeof check> =>
    check('POST', `/rest-api/mixer/${path}`, `/rest-api/mixer/${path}`, body);
  await mixer('find_all', {}); // 404
  await mixer('startup', { uri: 'mixer://show', width: 320, height: 180 });
  await mixer('startup', { uri: 'mixer://show' }); // 409
  await mixer('startup', { uri: 'show' }); // 400
  await mixer('add', { uri: 'mixer://show', remoteStreamName: 'cam' });
  await mixer('add', { uri: 'mixer://show', remoteStreamName: 'cam' }); // 409
  await mixer('add', { uri: 'mixer://show', remoteStreamName: 'nobody' }); // 404
  await mixer('set_layout', { uri: 'mixer://show', layout: 'speaker' });
  await mixer('setAudioVideo', { uri: 'mixer://show', remoteStreamName: 'cam', volume: 0.5 });
  await mixer('find_all', {});
  await mixer('remove', { uri: 'mixer://show', remoteStreamName: 'cam' });
  await mixer('terminate', { uri: 'mixer://show' });
  await mixer('terminate', { uri: 'mixer://show' }); // 404
  await check('POST', '/whip/cam2', '/whip/{streamName}', undefined, { type: 'text/plain', raw: 'v=0' });
  await check('DELETE', '/whip/cam/nope', '/whip/{streamName}/{sessionId}');
  await check('GET', '/health', '/health');
  await check('GET', '/metrics', '/metrics');
  await check('GET', '/metrics', '/metrics', undefined, { key: false });
  t.ok(checked.size >= 25, `${checked.size} route and status pairs checked`);
});
