/** Small real code models Attention Lens runs, offered first by Choose Model (sizes of their main-branch safetensors). */
export interface RecommendedModel {
  readonly repo: string;
  readonly architecture: string;
  readonly size: string;
  readonly license: string;
  readonly note: string;
}

export const RECOMMENDED_MODELS: readonly RecommendedModel[] = [
  { repo: 'HuggingFaceTB/SmolLM2-135M', architecture: 'Llama, 30 layers x 9 heads', size: '269 MB', license: 'Apache-2.0', note: 'general model with code in its training mix' },
  { repo: 'Qwen/Qwen2.5-Coder-0.5B', architecture: 'Qwen2, 24 layers x 14 heads', size: '988 MB', license: 'Apache-2.0', note: 'code model, 32k context' },
  { repo: 'amd/AMD-Llama-135m-code', architecture: 'Llama, 12 layers x 12 heads', size: '540 MB', license: 'Apache-2.0', note: 'code fine-tune' },
  { repo: 'codeparrot/codeparrot-small', architecture: 'GPT-2, 12 layers x 12 heads', size: '457 MB', license: 'Apache-2.0', note: 'trained on Python' },
];
