// The publish page: the camera to the gateway over WebRTC, republished to the RTMP URL.
import { createSession, SESSION_STATUS, STREAM_STATUS } from '/sdk/gateway.js';
const $ = (id) => document.getElementById(id);
const say = (text) => { $('status').textContent = text; };
// The token (when the gateway needs one) goes in the publish message, never in a URL.
const token = () => $('token').value.trim() || undefined;
const session = createSession({ urlServer: location.origin });
let stream;
session.on(SESSION_STATUS.ESTABLISHED, () => say('Ready'))
  .on(SESSION_STATUS.DISCONNECTED, (e) => say(`Disconnected: ${e.info}`))
  .on(SESSION_STATUS.FAILED, (e) => say(`Cannot reach the gateway: ${e.info}`));
$('form').addEventListener('submit', (event) => {
  event.preventDefault();
  $('publish').disabled = true;
  say('Starting…');
  stream = session.createStream({
    name: $('name').value,
    display: $('preview'),
    rtmpUrl: $('rtmpUrl').value,
    rtmpTransponderFullUrl: $('fullUrl').checked,
    token: token(),
  });
  window.gatewayStream = stream; // for the browser console
  stream.on(STREAM_STATUS.PUBLISHING, () => { say('Live'); $('stop').disabled = false; })
    .on(STREAM_STATUS.UNPUBLISHED, (e) => { say(`Stopped (${e.info})`); $('publish').disabled = false; $('stop').disabled = true; })
    .on(STREAM_STATUS.FAILED, (e) => { say(`Failed: ${e.info}`); $('publish').disabled = false; $('stop').disabled = true; })
    .publish();
});
$('stop').addEventListener('click', () => stream?.stop());
