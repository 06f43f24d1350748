// The publish page: the camera to the gateway over WebRTC, republished to each RTMP destination,
// with every destination's own state. "Live" only once a destination took the stream.
import { createSession, DESTINATION_STATE, SESSION_STATUS, STREAM_STATUS, watch } from '/sdk/gateway.js';
import { pictureOf } from '/picture.js';

const $ = (id) => document.getElementById(id);
const STATE_TEXT = {
  starting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  standby: 'Holding (publisher away)',
  failed: 'Failed',
  stopped: 'Stopped',
};
const session = createSession({ urlServer: location.origin });
window.gatewaySession = session; // for the browser console
let stream;
let statsTimer;
let rows = 0;

function say(text, kind = '') {
  $('status').textContent = text;
  $('status').className = `badge ${kind}`;
}

/** The overall status: "Live" only when every destination is live, never before one accepted. */
function sayStreamState() {
  if (!stream || stream.status() !== 'PUBLISHING') return;
  const all = stream.destinations().filter((d) => d.state !== 'stopped');
  const live = all.filter((d) => d.state === DESTINATION_STATE.LIVE).length;
  if (all.length === 0) say('Publishing (no destination)', 'warn');
  else if (live === all.length) say('Live', 'live');
  else if (live > 0) say(`Live on ${live} of ${all.length}`, 'warn');
  else if (all.every((d) => d.state === DESTINATION_STATE.FAILED)) say('Not live: every destination failed', 'bad');
  else say('Publishing; waiting for the destinations', 'warn');
}

/** A row as the SDK takes a destination: its URL, and the picture it asks for when it is not the camera's. */
function destinationOf(row) {
  return {
    id: row.dataset.id,
    rtmpUrl: row.querySelector('.url').value.trim(),
    rtmpTransponderFullUrl: row.querySelector('.full').checked,
    ...pictureOf(row.querySelector('.shape').value),
  };
}

function addRow(url = '', full = true) {
  const row = $('destination-row').content.firstElementChild.cloneNode(true);
  row.dataset.id = `d${++rows}`;
  const [urlInput, fullInput] = [row.querySelector('.url'), row.querySelector('.full')];
  if (rows === 1) [urlInput.id, fullInput.id] = ['rtmpUrl', 'fullUrl'];
  urlInput.value = url;
  fullInput.checked = full;
  row.querySelector('.remove').addEventListener('click', () => {
    if (stream && stream.destinations().some((d) => d.id === row.dataset.id)) stream.removeDestination(row.dataset.id);
    row.remove();
    sayStreamState();
  });
  row.querySelector('.go').addEventListener('click', () => {
    if (!urlInput.value.trim() || !stream) return;
    // A failed destination is tried again as a new push with the URL as it is now.
    if (stream.destinations().some((d) => d.id === row.dataset.id)) stream.removeDestination(row.dataset.id);
    stream.addDestination(destinationOf(row));
    lockRow(row, true);
    showDestination({ id: row.dataset.id, state: 'starting' });
  });
  // Each destination is checked as it is entered: the server reached and the application accepted, no media sent.
  urlInput.addEventListener('change', () => checkRow(row));
  fullInput.addEventListener('change', () => checkRow(row));
  lockRow(row, false);
  $('destinations').append(row);
  return row;
}

async function checkRow(row) {
  const rtmpUrl = row.querySelector('.url').value.trim();
  const line = row.querySelector('.check');
  const asked = (row.dataset.checking = String(Number(row.dataset.checking ?? 0) + 1));
  if (!rtmpUrl || session.status() !== SESSION_STATUS.ESTABLISHED) return void (line.textContent = '');
  line.textContent = 'Checking the destination…';
  line.className = 'check';
  let text;
  let kind;
  try {
    const report = await session.checkDestination({
      rtmpUrl,
      rtmpTransponderFullUrl: row.querySelector('.full').checked,
      name: $('name').value || undefined,
      token: $('token').value.trim() || undefined,
    });
    if (report.ok)
      [text, kind] = ['Destination reachable, application accepted (the key is tried when going live)', 'ok'];
    else if (report.reachable) [text, kind] = [`The destination refused: ${report.message}`, 'bad'];
    else [text, kind] = [`Destination not reachable: ${report.message}`, 'bad'];
  } catch (error) {
    [text, kind] = [`Cannot use this destination: ${error.message}`, 'bad'];
  }
  if (row.dataset.checking !== asked) return; // a newer check of this row answers instead
  line.textContent = text;
  line.title = text;
  line.className = `check ${kind}`;
}

/**
 * A row being pushed cannot be edited; while live, a new row gets a "Go live here" button and a
 * failed one can be corrected and tried again.
 */
function lockRow(row, pushed) {
  const failed = row.dataset.state === DESTINATION_STATE.FAILED;
  row.querySelector('.url').disabled = pushed && !failed;
  row.querySelector('.full').disabled = pushed && !failed;
  row.querySelector('.shape').disabled = pushed && !failed;
  const go = row.querySelector('.go');
  go.hidden = (pushed && !failed) || !stream || stream.status() !== 'PUBLISHING';
  go.textContent = failed ? 'Try again' : 'Go live here';
}

function showDestination(d) {
  const row = document.querySelector(`.destination[data-id="${d.id}"]`);
  if (!row) return;
  row.dataset.state = d.state;
  row.querySelector('.state').textContent = STATE_TEXT[d.state] ?? d.state;
  row.querySelector('.reason').textContent = d.reason ?? '';
  if (stream) lockRow(row, d.state !== DESTINATION_STATE.STOPPED);
  sayStreamState();
}

async function listDevices() {
  try {
    const devices = await navigator.mediaDevices.enumerateDevices();
    for (const [kind, select] of [
      ['videoinput', $('camera')],
      ['audioinput', $('microphone')],
    ]) {
      const chosen = select.value;
      select.replaceChildren(select.options[0]);
      for (const device of devices.filter((d) => d.kind === kind && d.deviceId)) {
        select.append(
          new Option(
            device.label || `${kind === 'videoinput' ? 'Camera' : 'Microphone'} ${select.length}`,
            device.deviceId,
          ),
        );
      }
      select.value = chosen;
    }
  } catch {
    // No device list: the defaults are used.
  }
}

function constraints() {
  const video = { width: 1280, height: 720, ...($('camera').value ? { deviceId: { exact: $('camera').value } } : {}) };
  const audio = $('microphone').value ? { deviceId: { exact: $('microphone').value } } : true;
  return { video, audio };
}

async function showStats() {
  const stats = await stream?.getSendStats();
  if (!stats) return;
  $('stats').hidden = false;
  $('stats').textContent = `${stats.width}×${stats.height} · ${stats.frameRate} fps · ${stats.bitrateKbps} kb/s`;
}

function ended(text, kind) {
  say(text, kind);
  clearInterval(statsTimer);
  $('stats').hidden = true;
  for (const id of ['publish', 'name', 'camera', 'microphone']) $(id).disabled = false;
  $('stop').disabled = true;
  $('mute').disabled = true;
  $('captions').hidden = true;
  stopSpeech();
  stopReceived();
  $('received').disabled = true;
  for (const row of document.querySelectorAll('.destination')) {
    if (row.dataset.state && row.dataset.state !== DESTINATION_STATE.FAILED) {
      row.dataset.state = DESTINATION_STATE.STOPPED;
      row.querySelector('.state').textContent = STATE_TEXT.stopped;
    }
    lockRow(row, false);
  }
  stream = undefined;
}

session
  .on(SESSION_STATUS.ESTABLISHED, (e) => {
    if (!stream) say(e.info === 'reconnected' ? 'Ready (reconnected)' : 'Ready');
  })
  .on(SESSION_STATUS.RECONNECTING, (e) => {
    if (!stream) say(`Connection lost; reconnecting in ${Math.round(e.delayMs / 100) / 10} s`, 'warn');
  })
  .on(SESSION_STATUS.DISCONNECTED, (e) => say(`Disconnected: ${e.info}`, 'bad'))
  .on(SESSION_STATUS.FAILED, (e) => say(`Cannot reach the gateway: ${e.info}`, 'bad'));

$('form').addEventListener('submit', (event) => {
  event.preventDefault();
  const destinations = [...document.querySelectorAll('.destination')].map(destinationOf).filter((d) => d.rtmpUrl);
  for (const id of ['publish', 'name', 'camera', 'microphone']) $(id).disabled = true;
  say('Starting…');
  stream = session.createStream({
    name: $('name').value,
    display: $('preview'),
    constraints: constraints(),
    destinations,
    token: $('token').value.trim() || undefined,
  });
  window.gatewayStream = stream; // for the browser console
  for (const d of destinations) lockRow(document.querySelector(`.destination[data-id="${d.id}"]`), true);
  stream
    .on(STREAM_STATUS.PUBLISHING, () => {
      $('stop').disabled = false;
      $('mute').disabled = false;
      $('received').disabled = false;
      $('captions').hidden = false;
      for (const row of document.querySelectorAll('.destination'))
        lockRow(
          row,
          stream.destinations().some((d) => d.id === row.dataset.id),
        );
      for (const d of stream.destinations()) showDestination(d);
      sayStreamState();
      clearInterval(statsTimer);
      statsTimer = setInterval(showStats, 1000);
      listDevices(); // labels are known once the camera is allowed
    })
    .on(STREAM_STATUS.DESTINATION, (e) => showDestination(e.destination))
    .on(STREAM_STATUS.RECONNECTING, (e) =>
      say(`Connection lost (${e.info}); reconnecting in ${Math.round(e.delayMs / 100) / 10} s`, 'warn'),
    )
    .on(STREAM_STATUS.UNPUBLISHED, (e) => ended(`Stopped (${e.info})`))
    .on(STREAM_STATUS.FAILED, (e) => ended(`Failed: ${e.info}`, 'bad'))
    .publish();
});
$('stop').addEventListener('click', () => stream?.stop());

/** What the gateway receives, played back from it over WHEP (the token needs a view grant, when one is needed). */
let received;
function stopReceived() {
  void received?.stop();
  received = undefined;
  $('receivedPlayer').hidden = true;
  $('received').setAttribute('aria-pressed', 'false');
}
$('received').addEventListener('click', async () => {
  if (received) return stopReceived();
  $('received').disabled = true;
  try {
    received = await watch({
      name: $('name').value,
      video: $('receivedPlayer'),
      token: $('token').value.trim() || undefined,
    });
    $('receivedPlayer').hidden = false;
    $('received').setAttribute('aria-pressed', 'true');
  } catch (error) {
    say(`Cannot show what the gateway receives: ${error.message}`, 'warn');
  } finally {
    $('received').disabled = !stream || stream.status() !== 'PUBLISHING';
  }
});
$('mute').addEventListener('click', () => {
  if (!stream) return;
  if (stream.isAudioMuted()) stream.unmuteAudio();
  else stream.muteAudio();
  const muted = stream.isAudioMuted();
  $('mute').textContent = muted ? 'Unmute microphone' : 'Mute microphone';
  $('mute').setAttribute('aria-pressed', String(muted));
});
/** Captions (CEA-608 in every destination's video): typed, or from the browser's speech recogniser where it has one. */
async function sendCaption(text, final = true) {
  try {
    const pushes = await stream.sendCaption(text, { final });
    if (final) say(`Caption sent to ${pushes} destination${pushes === 1 ? '' : 's'}`);
  } catch (error) {
    say(`Caption not sent: ${error.message}`, 'warn');
  }
}
$('captions').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = $('captionText').value.trim();
  if (!stream || !text) return;
  $('captionText').value = '';
  void sendCaption(text);
});

// The recogniser depends on the browser (Chromium's sends the audio to a speech service): the
// switch is shown only where there is one. Interim guesses go out at most 4 times a second, each
// written over by the next, until the final text.
const Recognition = window.SpeechRecognition ?? window.webkitSpeechRecognition;
$('speechSwitch').hidden = !Recognition;
let recognition;
let lastInterimAt = 0;
/** The end of what was said, within what one caption holds (four rows of 32 columns). */
const captionTail = (text) => (text.length <= 120 ? text : text.slice(text.indexOf(' ', text.length - 120) + 1));
function stopSpeech() {
  const ending = recognition;
  recognition = undefined;
  ending?.stop();
  $('speech').checked = false;
}
$('speech').addEventListener('change', () => {
  if (!$('speech').checked) return stopSpeech();
  recognition = new Recognition();
  recognition.continuous = true;
  recognition.interimResults = true;
  recognition.onresult = (event) => {
    const result = event.results[event.results.length - 1];
    const text = captionTail(result[0].transcript.trim());
    if (!text || !stream) return;
    if (!result.isFinal && performance.now() - lastInterimAt < 250) return;
    lastInterimAt = performance.now();
    void sendCaption(text, result.isFinal);
  };
  recognition.onerror = (event) => say(`Speech captions: ${event.error}`, 'warn');
  // It stops by itself after a silence: started again while the switch is on.
  recognition.onend = () => recognition?.start();
  recognition.start();
});

$('addDestination').addEventListener('click', () => addRow().querySelector('.url').focus());
addRow();
listDevices();
