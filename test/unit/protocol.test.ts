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
