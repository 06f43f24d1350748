import t from 'tap';
import { Cea608Writer, captionRows, PAD_PAIR, withParity, type CcPair } from '../../src/captions/cea608.js';
import { captionSei, withSei } from '../../src/captions/sei.js';
import { CaptionFlood } from '../../src/captions/flood.js';
import { GatewayError } from '../../src/core/errors.js';
import { CaptionTrack, type CaptionCue } from '../../src/captions/track.js';
import { parseChannelCaption, placeCaption } from '../../src/captions/request.js';
import { RecordingCaptions, vttTime } from '../../src/links/record-captions.js';
import { Cea608Reader, seiPairs } from '../../kit/cea608-reader.js';
import { flvNals } from '../../kit/synthetic-publisher.js';

const hex = (pairs: CcPair[]): string[] => pairs.map((p) => p.toString(16).padStart(4, '0'));
const all = (writer: Cea608Writer): CcPair[] => writer.take(writer.pending);

t.test('each byte gets odd parity in its top bit', async (t) => {
  t.equal(withParity(0x00), 0x80);
  t.equal(withParity(0x14), 0x94, 'two ones: the bit is set');
  t.equal(withParity(0x2c), 0x2c, 'three ones: left clear');
  t.equal(withParity(0x2d), 0xad);
  t.equal(PAD_PAIR, 0x8080);
});

t.test(
  'a caption rolls in: roll-up 2 before each caption, then per row a carriage return and row 15, each sent twice, then the text',
  async (t) => {
    const writer = new Cea608Writer();
    writer.write('Hello');
    t.same(hex(all(writer)), ['9425', '9425', '94ad', '94ad', '94e0', '94e0', 'c8e5', 'ecec', 'ef80']);
    writer.write('Hi');
    t.same(
      hex(all(writer)),
      ['9425', '9425', '94ad', '94ad', '94e0', '94e0', 'c8e9'],
      'the mode again: a decoder that joins now and starts in no mode shows this caption',
    );
    writer.erase();
    t.same(hex(all(writer)), ['942c', '942c']);
  },
);

t.test('special and extended characters: their code twice, an extended one after a basic stand-in', async (t) => {
  const writer = new Cea608Writer();
  writer.write('a♪');
  t.same(hex(all(writer)).slice(6), ['6180', '9137', '9137'], '♪ is 0x11 0x37');
  writer.write('{');
  t.same(hex(all(writer)).slice(6), ['a880', '1329', '1329'], "'{' is 0x13 0x29, after '('");
  writer.write('♪♪');
  t.same(
    hex(all(writer)).slice(6),
    ['9137', '9137', '8080', '9137', '9137'],
    'a null pair keeps the second from reading as a repeat',
  );
  writer.write('é*');
  t.same(hex(all(writer)).slice(6), ['dcab', '92a8', '92a8'], "é is basic 0x5C; '*' is extended 0x12 0x28, after '+'");
});

t.test('a character 608 has no code for is sent as its letter without accents, or as ?, and counted', async (t) => {
  const writer = new Cea608Writer();
  writer.write('ą字');
  t.same(hex(all(writer)).slice(6), ['61bf'], "'a' and '?'");
  t.equal(writer.replaced, 2);
});

t.test('text is wrapped into rows of 32 columns', async (t) => {
  t.same(captionRows('  one   two  '), ['one two']);
  const rows = captionRows('The quick brown fox jumps over the lazy dog and keeps on running far away');
  t.ok(rows.every((row) => row.length <= 32));
  t.equal(rows.join(' '), 'The quick brown fox jumps over the lazy dog and keeps on running far away');
  t.same(
    captionRows('x'.repeat(70)),
    ['x'.repeat(32), 'x'.repeat(32), 'x'.repeat(6)],
    'a word longer than a row is cut',
  );
});

t.test('take hands out at most the count asked, oldest first', async (t) => {
  const writer = new Cea608Writer();
  writer.write('Hello');
  t.equal(writer.pending, 9);
  t.same(hex(writer.take(2)), ['9425', '9425']);
  t.equal(writer.pending, 7);
  writer.take(100);
  t.same(writer.take(1), [], 'nothing left');
});

t.test('the SEI: A/53 cc_data in user data registered by ITU-T T.35, with emulation prevention', async (t) => {
  const sei = captionSei([0x9425, 0x8080]);
  t.same(
    [...sei],
    [
      0x06, 0x04, 17, 0xb5, 0x00, 0x31, 0x47, 0x41, 0x39, 0x34, 0x03, 0xc2, 0xff, 0xfc, 0x94, 0x25, 0xfc, 0x80, 0x80,
      0xff, 0x80,
    ],
  );
  t.throws(() => captionSei([]), RangeError);
  t.throws(() => captionSei(new Array<number>(32).fill(PAD_PAIR)), RangeError);
  const long = captionSei(new Array<number>(31).fill(0x0000));
  const startCode = [...long].findIndex((byte, i) => byte === 0 && long[i + 1] === 0 && long[i + 2]! <= 3);
  t.equal(startCode, -1, 'no two zero bytes are followed by a byte under 4');
});

t.test('the SEI goes before the first slice; every other byte of the frame is kept', async (t) => {
  const nal = (bytes: number[]): Buffer => Buffer.concat([Buffer.from([0, 0, 0, bytes.length]), Buffer.from(bytes)]);
  const header = Buffer.from([0x17, 1, 0, 0, 0]);
  const body = Buffer.concat([
    header,
    nal([0x09, 0xf0]),
    nal([0x67, 1, 2]),
    nal([0x68, 3]),
    nal([0x65, 9, 9, 9]),
    nal([0x65, 8]),
  ]);
  const sei = captionSei([0x9425]);
  const out = withSei(body, sei);
  t.same(
    out,
    Buffer.concat([
      header,
      nal([0x09, 0xf0]),
      nal([0x67, 1, 2]),
      nal([0x68, 3]),
      nal([...sei]),
      nal([0x65, 9, 9, 9]),
      nal([0x65, 8]),
    ]),
  );
  t.equal(withSei(Buffer.concat([header, nal([0x09, 0xf0])]), sei).length, 11, 'no slice: as it was');
});

t.test(
  'a client past 20 captions in a second is refused with 429 until the second has passed; others are not held',
  async (t) => {
    let now = 0;
    const flood = new CaptionFlood(() => now);
    for (let i = 0; i < 20; i++) flood.take('10.0.0.1');
    t.throws(() => flood.take('10.0.0.1'), { code: 'too_many_requests', retryAfterS: 1 });
    t.doesNotThrow(() => flood.take('10.0.0.2'), 'another address has its own share');
    now = 999;
    t.throws(() => flood.take('10.0.0.1'), GatewayError, 'still the same second');
    now = 1000;
    t.doesNotThrow(() => flood.take('10.0.0.1'), 'a new second');
    for (let i = 0; i < 20; i++) flood.take('busy');
    t.throws(() => flood.take('busy'), GatewayError);
    for (let i = 0; i < 10_000; i++) flood.take(`client-${i}`);
    t.doesNotThrow(() => flood.take('busy'), 'the address seen longest ago is forgotten first (10,000 kept at most)');
  },
);

t.test(
  'interim text is written over: what of it waits is dropped, the row rewritten from column 0 and the rest deleted',
  async (t) => {
    const writer = new Cea608Writer();
    writer.write('Hi', false);
    t.same(
      hex(all(writer)),
      ['9425', '9425', '94ad', '94ad', '94e0', '94e0', 'c8e9'],
      'a new row, as a final caption starts one',
    );
    writer.write('Hello', false);
    t.equal(writer.pending, 9, 'the mode, row 15 again, the text, delete to end of row');
    writer.write('Hello world.');
    t.same(
      hex(all(writer)),
      ['9425', '9425', '94e0', '94e0', 'c8e5', 'ecec', 'ef20', 'f7ef', 'f2ec', '64ae', '94a4', '94a4'],
      'the waiting interim dropped (the mode it came with kept, not sent twice); the final text over the row, the rest deleted',
    );
    writer.write('Next');
    t.same(
      hex(all(writer)),
      ['9425', '9425', '94ad', '94ad', '94e0', '94e0', 'cee5', 'f8f4'],
      'after a final caption, a new row',
    );
    writer.write('Half', false);
    t.same(hex(writer.take(5)), ['9425', '9425', '94ad', '94ad', '94e0'], 'an interim in part sent');
    writer.write('Halfway there');
    t.same(
      hex(all(writer)).slice(0, 5),
      ['9425', '9425', '94e0', '94e0', 'c861'],
      'what was sent stays; the mode again, and the row addressed again',
    );
  },
);

t.test(
  'a push that sends no frames holds at most about 20 s of pairs: what waits is dropped before the next caption',
  async (t) => {
    const writer = new Cea608Writer();
    for (let i = 0; i < 200; i++) writer.write(`Caption number ${i} of a push in standby.`);
    t.ok(writer.pending <= 600 + 60, `${writer.pending} pairs waiting`);
    t.ok(writer.dropped >= 1, 'counted');
    const pairs = hex(all(writer));
    t.same(
      pairs.slice(0, 6),
      ['9425', '9425', '94ad', '94ad', '94e0', '94e0'],
      'what is left starts with the mode and a row of its own',
    );
  },
);

t.test('captions that never stop, faster than frames take them: the queue stays bounded, and in order', async (t) => {
  const writer = new Cea608Writer();
  for (let i = 0; i < 5000; i++) {
    writer.write(`Caption ${i}`);
    writer.take(5);
  }
  t.ok(writer.pending <= 600 + 20, `${writer.pending} waiting`);
  const taken = writer.take(4);
  t.equal(taken.length, 4, 'still taken in order after the array was cut');
});

/** A frame body with one non-IDR slice NAL unit (AVCC, 4-byte lengths). */
const sliceFrame = (): Buffer => Buffer.from([0x27, 1, 0, 0, 0, 0, 0, 0, 2, 0x41, 0x9a]);
/** The cc pairs of a frame's SEI (the SEI's cc_data: the three bytes after each 0xfc marker). */
const ccPairs = (body: Buffer): string[] => {
  const pairs: string[] = [];
  for (let i = 0; i + 2 < body.length; i++) if (body[i] === 0xfc) pairs.push(body.readUInt16BE(i + 1).toString(16));
  return pairs.filter((pair) => pair !== '8080');
};

t.test('a caption waits for the frames captured at its time: a push behind puts it on the same pictures', async (t) => {
  const cues: CaptionCue[] = [];
  const track = new CaptionTrack((cue) => cues.push(cue));
  track.write({ text: 'Later', final: true, atMs: 1_100 });
  track.write({ text: 'Sooner', final: true, atMs: 1_050 });
  const sent: string[][] = [];
  // Frames captured from 1000 ms on, 33 ms apart, going out at RTMP time 0 on.
  for (let i = 0; i < 8; i++) sent.push(ccPairs(track.frame(sliceFrame(), i * 33, 1_000 + i * 33)));
  t.same(sent.slice(0, 2), [[], []], 'nothing before 1050 ms');
  t.same(
    cues.map((cue) => [cue.timestamp, cue.text]),
    [
      [66, 'Sooner'],
      [132, 'Later'],
    ],
    'each begins on the first frame captured at or after its time, in the order of their times',
  );
  t.ok(sent[2]!.includes('9425'), 'the first carries roll-up, as a first caption does');
});

t.test('captions held past 64 go into the video at once, oldest first', async (t) => {
  const cues: string[] = [];
  const track = new CaptionTrack((cue) => cues.push(cue.text));
  for (let i = 0; i < 66; i++) track.write({ text: `c${i}`, final: true, atMs: 10_000 + i });
  t.same(cues, ['c0', 'c1']);
  track.frame(sliceFrame(), 0, 20_000);
  t.equal(cues.length, 66, 'the rest on the frame captured after them');
});

t.test(
  "a caption's media time: now when not given; within 10 s back and 60 s ahead, else refused naming `at`",
  async (t) => {
    t.same(placeCaption(5_000, 65_000), { atMs: 65_000, at: 60_000 });
    t.same(placeCaption(5_000, 65_000, 52_000), { atMs: 57_000, at: 52_000 });
    t.same(placeCaption(5_000, 65_000, 120_000), { atMs: 125_000, at: 120_000 });
    for (const at of [49_999, 120_001]) {
      const error = (() => {
        try {
          placeCaption(5_000, 65_000, at);
        } catch (caught) {
          return caught as GatewayError;
        }
      })();
      t.match(error, { code: 'invalid_request', field: 'at' }, `${at} refused`);
    }
  },
);

t.test(
  "a recording's WebVTT: a cue per caption, interim text made one with its final, each until the next or 10 s",
  async (t) => {
    const captions = new RecordingCaptions();
    captions.add({ linkMs: 1_000, text: 'Hel', final: false });
    captions.add({ linkMs: 1_400, text: 'Hello <you> & all', final: true });
    captions.add({ linkMs: 3_000, text: 'Second', final: true });
    captions.add({ linkMs: 20_000, text: 'Across the cut', final: true });
    t.equal(
      captions.part(0, 21_000),
      'WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nHello &lt;you&gt; &amp; all\n\n00:00:03.000 --> 00:00:13.000\nSecond\n\n' +
        '00:00:20.000 --> 00:00:21.000\nAcross the cut\n',
    );
    t.equal(
      captions.part(21_000, undefined),
      'WEBVTT\n\n00:00:00.000 --> 00:00:09.000\nAcross the cut\n',
      'the next part has the rest of the cue that crosses',
    );
    t.equal(captions.part(30_000, undefined), undefined, 'none left: no file');
    t.equal(vttTime(3_725_004), '01:02:05.004');
    t.equal(vttTime(101 * 3_600_000), '101:00:00.000', 'hours take the digits they need');
  },
);

t.test('a data channel message as a caption: text, or JSON; what is refused names its field', async (t) => {
  t.same(parseChannelCaption('Hello.'), { text: 'Hello.' });
  t.same(parseChannelCaption('{"text": "Hel", "final": false, "at": 1200}'), { text: 'Hel', final: false, at: 1200 });
  const fieldOf = (message: string): string | undefined => {
    try {
      parseChannelCaption(message);
    } catch (error) {
      return (error as GatewayError).field;
    }
  };
  t.equal(fieldOf('{"text": 3'), 'message', 'not JSON');
  t.equal(fieldOf('{"text": "hi", "key": 1}'), 'key', 'a field it does not take');
  t.equal(fieldOf('a\u0007b'), 'text', 'a control character');
});

t.test(
  'pop-on: loaded off screen at the bottom rows, then shown whole (end of caption); interim text not shown',
  async (t) => {
    const writer = new Cea608Writer('pop-on');
    writer.write('Hi');
    t.same(
      hex(all(writer)),
      ['9420', '9420', '94ae', '94ae', '94e0', '94e0', 'c8e9', '942f', '942f'],
      'RCL, ENM, row 15, the text, EOC',
    );
    writer.write('Hel', false);
    t.equal(writer.pending, 0, 'interim: nothing');
    writer.write('one two three four five six seven eight nine ten eleven');
    const rows = hex(all(writer)).filter((pair) => ['1340', '13e0', '9440', '94e0'].includes(pair));
    t.same(rows, ['9440', '9440', '94e0', '94e0'], 'two rows: 14 and 15');
  },
);

/** The CC1 pairs of each frame body (AVCC), through the kit's reader of SEI NAL units. */
const framePairs = (body: Buffer): number[] => flvNals(body).flatMap((nal) => seiPairs(nal));

t.test(
  'a decoder that starts in no mode, joining at any frame, shows the next whole caption: the mode goes before each',
  async (t) => {
    const captions = ['First caption here.', 'Second one, café.', 'Third and last.', 'Closing words.'];
    const track = new CaptionTrack();
    const frames: number[][] = [];
    for (let i = 0; i < 600; i++) {
      const caption = i % 150 === 10 ? captions[(i - 10) / 150] : undefined;
      if (caption) track.write({ text: caption, final: true, atMs: i * 33 });
      frames.push(framePairs(track.frame(sliceFrame(), i * 33, i * 33)));
    }
    t.ok(
      frames.every((pairs) => pairs.length === 1),
      'every frame carries one field-1 pair (a null pair when there is nothing to say)',
    );
    const missed: number[] = [];
    for (let join = 0; join < 600; join += 7) {
      const reader = new Cea608Reader();
      for (const pairs of frames.slice(join)) for (const pair of pairs) reader.pair(pair);
      reader.end();
      // The first caption written at or after the frame it joined at: all of its pairs come after.
      const next = captions.findIndex((_, n) => join <= 10 + n * 150);
      if (next < 0) continue;
      const shown = reader.shown.map((caption) => caption.text);
      if (!shown.includes(captions[next]!) || shown.some((text) => !captions.includes(text))) missed.push(join);
    }
    t.same(
      missed,
      [],
      'joined at every 7th frame: the first caption written after it is shown whole, and nothing garbled',
    );
  },
);

t.test('frames further apart than 608 runs still carry one field-1 pair each; the rest waits', async (t) => {
  const track = new CaptionTrack();
  track.write({ text: 'A caption at fifteen frames a second.', final: true, atMs: 0 });
  const counts: number[] = [];
  for (let i = 0; i < 40; i++) counts.push(framePairs(track.frame(sliceFrame(), i * 66, i * 66)).length);
  t.same(new Set(counts), new Set([1]), 'one pair a frame at 66 ms apart');
});

t.test('caption text is composed (NFC) and its invisible characters removed, wherever it comes from', async (t) => {
  t.equal(parseChannelCaption('cafe\u0301').text, 'café', 'a combining accent, composed');
  t.equal(
    parseChannelCaption('a\u200bb\u200dc\u200e\u202ed\u2066e\u2069\ufefff').text,
    'abcdef',
    'zero-width and bidirectional characters removed',
  );
  let refused: unknown;
  try {
    parseChannelCaption('\u200b\u200f');
  } catch (error) {
    refused = error;
  }
  t.match(refused, { code: 'invalid_request', field: 'text' }, 'nothing left: a 400 naming text');
  const writer = new Cea608Writer();
  writer.write(parseChannelCaption('cafe\u0301').text);
  t.equal(writer.replaced, 0, 'é has its own code: nothing sent as ?');
});
