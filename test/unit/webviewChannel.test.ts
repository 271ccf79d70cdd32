import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebviewChannel } from '../../src/panel/webviewChannel';
import { PROTOCOL_VERSION, type HostToWebviewMessage, type WebviewToHostMessage } from '../../src/shared/protocol';

function makeChannel() {
  const posted: HostToWebviewMessage[] = [];
  const received: WebviewToHostMessage[] = [];
  const problems: string[] = [];
  const channel = new WebviewChannel(
    async (message) => {
      posted.push(message);
      return true;
    },
    { onMessage: (m) => received.push(m), onProblem: (p) => problems.push(p) },
  );
  return { channel, posted, received, problems };
}

test('messages sent before ready are queued and delivered in order after the handshake', () => {
  const { channel, posted } = makeChannel();
  channel.send({ type: 'panelState', status: 'one' });
  channel.send({ type: 'panelState', status: 'two' });
  assert.equal(posted.length, 0, 'nothing may reach a webview that has not said ready');
  channel.receive({ type: 'ready', protocolVersion: PROTOCOL_VERSION });
  assert.deepEqual(
    posted.map((m) => m.type + (m.type === 'panelState' ? `:${m.status}` : '')),
    ['handshake', 'panelState:one', 'panelState:two'],
  );
  assert.ok(channel.isReady);
});

test('a webview with another protocol version is refused and gets nothing else', () => {
  const { channel, posted, problems } = makeChannel();
  channel.send({ type: 'panelState', status: 'queued' });
  channel.receive({ type: 'ready', protocolVersion: PROTOCOL_VERSION + 1 });
  assert.equal(posted.length, 1);
  assert.equal(posted[0].type, 'handshake');
  assert.equal(posted[0].type === 'handshake' && posted[0].accepted, false);
  assert.equal(channel.isReady, false);
  assert.equal(problems.length, 1);
});

test('responses resolve the request with the same id, even out of order', async () => {
  const { channel, posted } = makeChannel();
  channel.receive({ type: 'ready', protocolVersion: PROTOCOL_VERSION });
  const first = channel.request({ type: 'probeWebGpu' }, 5000);
  const second = channel.request({ type: 'probeWebGpu' }, 5000);
  const ids = posted.filter((m) => m.type === 'probeWebGpu').map((m) => (m.type === 'probeWebGpu' ? m.requestId : -1));
  assert.equal(new Set(ids).size, 2, 'each request gets its own id');
  channel.receive({ type: 'probeResult', requestId: ids[1], probe: { ok: false, error: 'second' } });
  channel.receive({ type: 'probeResult', requestId: ids[0], probe: { ok: false, error: 'first' } });
  const [a, b] = await Promise.all([first, second]);
  assert.deepEqual([a.probe, b.probe], [{ ok: false, error: 'first' }, { ok: false, error: 'second' }]);
});

test('a request with no answer fails with a message instead of waiting forever', async () => {
  const { channel } = makeChannel();
  channel.receive({ type: 'ready', protocolVersion: PROTOCOL_VERSION });
  await assert.rejects(channel.request({ type: 'probeWebGpu' }, 20), /did not answer "probeWebGpu"/);
});

test('closing the panel rejects pending requests and drops later sends', async () => {
  const { channel, posted } = makeChannel();
  channel.receive({ type: 'ready', protocolVersion: PROTOCOL_VERSION });
  const pending = channel.request({ type: 'probeWebGpu' }, 5000);
  channel.dispose();
  await assert.rejects(pending, /closed/);
  const before = posted.length;
  channel.send({ type: 'panelState', status: 'late' });
  assert.equal(posted.length, before);
  await assert.rejects(channel.request({ type: 'probeWebGpu' }, 5000), /closed/);
});

test('an answer to an unknown request and malformed input are reported, not thrown', () => {
  const { channel, problems, received } = makeChannel();
  channel.receive({ type: 'ready', protocolVersion: PROTOCOL_VERSION });
  channel.receive({ type: 'probeResult', requestId: 999, probe: { ok: false, error: 'x' } });
  channel.receive({ nonsense: true });
  assert.equal(problems.length, 2);
  assert.equal(received.length, 1, 'only the ready message reaches the handler');
});

test('a webview that never says ready fails its requests with a message instead of hanging', async () => {
  const { channel, posted } = makeChannel();
  const waiting = channel.request({ type: 'probeWebGpu' }, 60_000);
  channel.expectReadyWithin(20, 'the panel did not start');
  await assert.rejects(waiting, /did not start/);
  await assert.rejects(channel.request({ type: 'probeWebGpu' }, 60_000), /did not start/, 'later requests fail at once');
  channel.receive({ type: 'ready', protocolVersion: PROTOCOL_VERSION });
  assert.deepEqual(posted.map((m) => m.type), ['handshake'], 'the failed request is not sent after all');
  const healed = channel.request({ type: 'probeWebGpu' }, 5000);
  const sent = posted[posted.length - 1];
  assert.equal(sent.type, 'probeWebGpu');
  channel.receive({ type: 'probeResult', requestId: sent.type === 'probeWebGpu' ? sent.requestId : -1, probe: { ok: false, error: 'late but fine' } });
  assert.deepEqual((await healed).probe, { ok: false, error: 'late but fine' });
  channel.dispose();
});
