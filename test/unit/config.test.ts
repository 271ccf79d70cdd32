import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { COMMANDS } from '../../src/commandIds';
import { DEFAULT_CONFIG, SETTING_KEYS, readConfig } from '../../src/config';

const manifest = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'package.json'), 'utf8'));
const properties: Record<string, { default: unknown; markdownDescription?: string; enum?: string[] }> = manifest.contributes.configuration.properties;

test('every setting in package.json is read by the typed configuration, with the same default', () => {
  const declared = Object.keys(properties).sort();
  const typed = Object.values(SETTING_KEYS).map((key) => `attentionLens.${key}`).sort();
  assert.deepEqual(typed, declared);
  for (const [field, key] of Object.entries(SETTING_KEYS)) {
    assert.deepEqual(properties[`attentionLens.${key}`].default, DEFAULT_CONFIG[field as keyof typeof DEFAULT_CONFIG], `default of attentionLens.${key}`);
  }
});

test('every setting documents itself with a markdownDescription', () => {
  for (const [key, schema] of Object.entries(properties)) {
    assert.ok(schema.markdownDescription && schema.markdownDescription.length > 20, `${key} needs a markdownDescription`);
  }
});

test('unset settings give the defaults', () => {
  assert.deepEqual(readConfig(() => undefined), DEFAULT_CONFIG);
});

test('hand-edited values of the wrong type or out of range fall back or are clamped', () => {
  const raw: Record<string, unknown> = {
    topK: 1000,
    minDistance: -5,
    backend: 'quantum',
    autoAnalyze: 'onIdle',
    idleDelayMs: '500',
    'overlay.enabled': 'yes',
    model: '  /models/smol  ',
    huggingFaceEndpoint: 'http://127.0.0.1:9999/',
  };
  const config = readConfig((key) => raw[key]);
  assert.equal(config.topK, 64);
  assert.equal(config.minDistance, 0);
  assert.equal(config.backend, 'auto');
  assert.equal(config.autoAnalyze, 'onIdle');
  assert.equal(config.idleDelayMs, DEFAULT_CONFIG.idleDelayMs);
  assert.equal(config.overlayEnabled, true);
  assert.equal(config.model, '/models/smol');
  assert.equal(config.huggingFaceEndpoint, 'http://127.0.0.1:9999');
});

test('enum settings accept exactly the values package.json declares', () => {
  for (const [field, key] of Object.entries(SETTING_KEYS)) {
    const allowed = properties[`attentionLens.${key}`].enum;
    if (!allowed) continue;
    for (const value of allowed) assert.equal(readConfig((k) => (k === key ? value : undefined))[field as keyof typeof DEFAULT_CONFIG], value);
  }
});

test('the command ids in code and in package.json are the same set, all in the "Attention Lens" category', () => {
  const contributed = manifest.contributes.commands as Array<{ command: string; category: string; title: string }>;
  assert.deepEqual(contributed.map((c) => c.command).sort(), Object.values(COMMANDS).sort());
  for (const command of contributed) assert.equal(command.category, 'Attention Lens', command.command);
  const required = ['analyzeFile', 'showPanel', 'toggleOverlay', 'selectLayerHead', 'selectAggregation', 'chooseModel', 'showSourcesAtCursor', 'exportAnalysis', 'clear'];
  for (const id of required) assert.ok(contributed.some((c) => c.command === `attentionLens.${id}`), id);
});

test('activation is narrow and every contributed colour has theme defaults', () => {
  assert.ok(!manifest.activationEvents.includes('*'));
  for (const color of manifest.contributes.colors) {
    assert.ok(color.defaults.dark && color.defaults.light && color.defaults.highContrast, color.id);
  }
});
