import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PROTOCOL_VERSION, handshakeFor, parseWebviewMessage } from '../../src/shared/protocol';

const adapter = {
  vendor: 'google',
  architecture: 'swiftshader',
  device: '',
  description: 'SwiftShader device',
  isFallbackAdapter: true,
  features: ['subgroups'],
  limits: {
    maxBufferSize: 1 << 30,
    maxStorageBufferBindingSize: 1 << 27,
    maxComputeInvocationsPerWorkgroup: 256,
    maxComputeWorkgroupStorageSize: 16384,
    maxStorageBuffersPerShaderStage: 8,
  },
};

test('a well-formed probe result is accepted with its request id', () => {
  const parsed = parseWebviewMessage({ type: 'probeResult', requestId: 7, probe: { ok: true, adapter } });
  assert.ok(!('invalid' in parsed));
  assert.equal(parsed.type, 'probeResult');
  assert.equal(parsed.type === 'probeResult' && parsed.requestId, 7);
});

test('a failed probe carries its error as data', () => {
  const parsed = parseWebviewMessage({ type: 'probeResult', requestId: 1, probe: { ok: false, error: 'no adapter' } });
  assert.deepEqual(parsed, { type: 'probeResult', requestId: 1, probe: { ok: false, error: 'no adapter' } });
});

test('malformed messages are rejected with a reason instead of being acted on', () => {
  const cases: Array<[unknown, RegExp]> = [
    [null, /type/],
    ['ready', /type/],
    [{ type: 'ready' }, /protocolVersion/],
    [{ type: 'probeResult', probe: { ok: false, error: 'x' } }, /requestId/],
    [{ type: 'probeResult', requestId: 2, probe: { ok: true, adapter: { vendor: 'x' } } }, /malformed probe/],
    [{ type: 'runCommand', command: 'rm -rf' }, /unknown command/],
    [{ type: 'launchMissiles' }, /unknown message type/],
  ];
  for (const [raw, reason] of cases) {
    const parsed = parseWebviewMessage(raw);
    assert.ok('invalid' in parsed, `expected ${JSON.stringify(raw)} to be rejected`);
    assert.match(parsed.invalid, reason);
  }
});

test('the handshake accepts only the same protocol version and tells the user what to do', () => {
  assert.deepEqual(handshakeFor(PROTOCOL_VERSION), { type: 'handshake', protocolVersion: PROTOCOL_VERSION, accepted: true });
  const refused = handshakeFor(PROTOCOL_VERSION + 1);
  assert.equal(refused.accepted, false);
  assert.match(refused.error ?? '', /Show Attention Panel/);
});

test('knockout, span-effect, map and tab messages from the panel are checked before the host uses them', () => {
  const knockout = { type: 'knockoutResult', requestId: 4, result: { query: 9, nextToken: 3, top: [{ token: 3, prob: 0.5 }], spans: [{ start: 0, end: 2, kl: 0.1, deltaLogProb: -0.2, top: [{ token: 1, prob: 0.4 }] }] } };
  assert.deepEqual(parseWebviewMessage(knockout), knockout);
  const effect = { type: 'spanEffectResult', requestId: 5, result: { span: { start: 0, end: 2 }, tokens: [{ position: 2, kl: 0.3, deltaLogProb: null }] } };
  assert.deepEqual(parseWebviewMessage(effect), effect);
  const map = { type: 'mapRendered', uri: 'file:///a.ts', version: 3, threshold: 0.1, nodes: ['import fs'], edges: [{ from: 1, to: 0, weight: 0.5, agreement: 'both' }], heads: ['L1 H7'] };
  assert.deepEqual(parseWebviewMessage(map), map);
  assert.deepEqual(parseWebviewMessage({ type: 'tabShown', tab: 'map' }), { type: 'tabShown', tab: 'map' });
  const cases: Array<[unknown, RegExp]> = [
    [{ ...knockout, result: { ...knockout.result, spans: [{ start: 0, end: 2, kl: 'big', deltaLogProb: 0, top: [] }] } }, /malformed span/],
    [{ ...knockout, result: { ...knockout.result, top: [{ token: 1.5, prob: 1 }] } }, /top tokens/],
    [{ ...effect, result: { span: { start: 0, end: 2 }, tokens: [{ position: 2, kl: NaN, deltaLogProb: null }] } }, /malformed result/],
    [{ ...map, edges: [{ from: 1, to: 0, weight: 0.5, agreement: 'maybe' }] }, /malformed edge/],
    [{ ...map, version: undefined }, /missing fields/],
    [{ type: 'tabShown', tab: 'settings' }, /unknown tab/],
  ];
  for (const [raw, reason] of cases) {
    const parsed = parseWebviewMessage(raw);
    assert.ok('invalid' in parsed, `expected ${JSON.stringify(raw)} to be rejected`);
    assert.match(parsed.invalid, reason);
  }
  assert.deepEqual(parseWebviewMessage({ type: 'knockoutResult', requestId: 4, error: 'device lost' }), { type: 'knockoutResult', requestId: 4, error: 'device lost' });
});
