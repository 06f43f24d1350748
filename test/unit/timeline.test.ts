import t from 'tap';
import { PushTimeline, type PipelineTag } from '../../src/pushes/timeline.js';

// The output timeline: publisher-clock times mapped to RTMP timestamps, monotonic per track, links
// starting at a keyframe, hand-overs moved on past what was sent.

const audio = (timestamp: number): PipelineTag => ({
  kind: 'audio',
  timestamp,
  sequenceHeader: false,
  keyframe: false,
});
const video = (timestamp: number, keyframe = false): PipelineTag => ({
  kind: 'video',
  timestamp,
  sequenceHeader: false,
  keyframe,
});
const header = (kind: 'audio' | 'video'): PipelineTag => ({
  kind,
  timestamp: 0,
  sequenceHeader: true,
  keyframe: kind === 'video',
});

t.test('the first moment placed is time 0; later ones are their distance from it', async (t) => {
  const timeline = new PushTimeline();
  t.equal(timeline.at(10_000.4), 0);
  t.equal(timeline.at(10_033.6), 33);
  t.equal(timeline.at(9_990), -10, 'earlier moments are negative: callers leave them out');
});

t.test('passed-through frames never go back, and start the link', async (t) => {
  const timeline = new PushTimeline();
  timeline.newLink(true);
  t.notOk(timeline.linkStarted);
  const first = timeline.frameTime(1000);
  timeline.placeFrame(first);
  t.ok(timeline.linkStarted, 'the first frame starts the link');
  t.equal(timeline.frameTime(1100), 100);
  timeline.placeFrame(100);
  t.equal(timeline.frameTime(1050), 101, 'a frame captured earlier than the last goes a millisecond after it');
  t.equal(timeline.frameTime(1100), 101, 'so does one captured at the same time');
  t.ok(timeline.isAhead(1101), 'a keyframe captured after the last frame is ahead');
  t.notOk(timeline.isAhead(1100), 'one at the last frame is not');
});

t.test("audio waits for the link's first keyframe when video is to come", async (t) => {
  const timeline = new PushTimeline();
  timeline.at(0);
  timeline.newLink(true);
  t.equal(timeline.placeTag(header('audio'), 0, 0, 0), 0, 'codec headers always go');
  t.equal(timeline.placeTag(audio(40), 0, 0, 0), undefined, 'audio before any keyframe is left out');
  t.equal(timeline.placeTag(video(50), 0, 0, 0), undefined, 'so is video that is not a keyframe');
  t.equal(timeline.placeTag(video(60, true), 0, 0, 0), 60, 'the keyframe starts the link');
  t.equal(timeline.placeTag(audio(50), 0, 0, 0), undefined, 'audio from before the keyframe is left out');
  t.equal(timeline.placeTag(audio(80), 0, 0, 0), 80);
  t.equal(timeline.placeTag(video(93), 0, 0, 0), 93);
});

t.test('without video to come, audio goes on from where the last link ended', async (t) => {
  const timeline = new PushTimeline();
  timeline.at(0);
  timeline.newLink(false);
  t.equal(timeline.placeTag(audio(20), 0, 0, 0), 20);
  t.equal(timeline.placeTag(audio(41), 0, 0, 0), 41);
  timeline.newLink(false);
  t.equal(timeline.placeTag(audio(30), 0, 0, 0), undefined, 'overlapping what was sent: left out');
  t.equal(timeline.placeTag(audio(41), 0, 0, 0), undefined, 'at the time of the last frame sent: left out');
  t.equal(timeline.placeTag(header('audio'), 0, 0, 0), 41, 'a codec header at that time still goes');
  t.equal(timeline.placeTag(audio(62), 0, 0, 0), 62);
});

t.test("ffmpeg's times are placed from its start, less the encoder priming", async (t) => {
  const timeline = new PushTimeline();
  timeline.at(5100);
  timeline.newLink(false);
  const priming = (1024 / 48000) * 1000;
  t.equal(timeline.placeTag(audio(0), 5100, 0, priming), undefined, 'the priming itself goes before time 0: left out');
  t.equal(
    timeline.placeTag(audio(priming + 21), 5100, 0, priming),
    21,
    'ffmpeg time 0 is its start on the publisher clock',
  );
  t.equal(
    timeline.placeTag(audio(priming + 42), 5200, 0, priming),
    142,
    'a pipeline started later is placed from its own start',
  );
});

t.test('a pipeline that takes over is moved on one frame past the last video sent', async (t) => {
  const timeline = new PushTimeline();
  timeline.at(0);
  timeline.newLink(true);
  timeline.placeFrame(timeline.frameTime(2000));
  // The new pipeline's first keyframe was captured at 1900, before the last still frame went out.
  const shift = timeline.shiftFor(1900, 33);
  t.equal(shift, 133);
  t.equal(timeline.placeTag(video(0, true), 1900, shift, 0), 2033, 'its keyframe follows the last frame');
  t.equal(timeline.shiftFor(2500, 33), 0, 'a keyframe captured later needs no shift');
});
