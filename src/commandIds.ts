/** Every command id the extension contributes, in one place (package.json lists the same ids). */
export const COMMANDS = {
  analyzeFile: 'attentionLens.analyzeFile',
  analyzeSelection: 'attentionLens.analyzeSelection',
  showPanel: 'attentionLens.showPanel',
  toggleOverlay: 'attentionLens.toggleOverlay',
  selectLayerHead: 'attentionLens.selectLayerHead',
  selectAggregation: 'attentionLens.selectAggregation',
  chooseModel: 'attentionLens.chooseModel',
  manageModelCache: 'attentionLens.manageModelCache',
  setHubToken: 'attentionLens.setHubToken',
  clearHubToken: 'attentionLens.clearHubToken',
  showSourcesAtCursor: 'attentionLens.showSourcesAtCursor',
  exportAnalysis: 'attentionLens.exportAnalysis',
  clear: 'attentionLens.clear',
  showLog: 'attentionLens.showLog',
  showAttenders: 'attentionLens.showAttenders',
  revealRange: 'attentionLens.revealRange',
  checkDependencies: 'attentionLens.checkDependencies',
  showCausalDependents: 'attentionLens.showCausalDependents',
  showDependencyMap: 'attentionLens.showDependencyMap',
} as const;

export type CommandId = (typeof COMMANDS)[keyof typeof COMMANDS];

/** The view type of the Attention Lens webview panel (also its `onWebviewPanel:` activation event). */
export const PANEL_VIEW_TYPE = 'attentionLens.panel';

/** The extension's id as VS Code knows it (`publisher.name`). */
export const EXTENSION_ID = 'attention-lens.attention-lens';
