/**
 * Small real code models Attention Lens runs, offered first by Choose Model: repo, architecture
 * (with what makes it differ from plain Llama), the size of its main-branch safetensors, license.
 */
export interface RecommendedModel {
  readonly repo: string;
  readonly architecture: string;
  readonly size: string;
  readonly license: string;
  readonly note: string;
}

export const RECOMMENDED_MODELS: readonly RecommendedModel[] = [
  { repo: 'HuggingFaceTB/SmolLM2-135M', architecture: 'Llama, 30 layers x 9 heads', size: '269 MB', license: 'Apache-2.0', note: 'general model with code in its training mix' },
  { repo: 'HuggingFaceTB/SmolLM2-360M', architecture: 'Llama, 32 layers x 15 heads', size: '724 MB', license: 'Apache-2.0', note: 'general model with code in its training mix, 8k context' },
  { repo: 'Qwen/Qwen2.5-Coder-0.5B', architecture: 'Qwen2, 24 layers x 14 heads', size: '988 MB', license: 'Apache-2.0', note: 'code model, 32k context' },
  { repo: 'Qwen/Qwen2.5-Coder-1.5B', architecture: 'Qwen2, 28 layers x 12 heads', size: '3.09 GB', license: 'Apache-2.0', note: 'code model, 32k context' },
  { repo: 'Qwen/Qwen3-0.6B', architecture: 'Qwen3 (q/k norms, head_dim 128), 28 layers x 16 heads', size: '1.50 GB', license: 'Apache-2.0', note: 'general model strong at code, 40k context' },
  { repo: 'Qwen/Qwen3-1.7B', architecture: 'Qwen3 (q/k norms, head_dim 128), 28 layers x 16 heads', size: '4.06 GB', license: 'Apache-2.0', note: 'general model strong at code, 40k context' },
  { repo: 'google/gemma-3-1b-pt', architecture: 'Gemma 3 (5 local layers per global one), 26 layers x 4 heads', size: '2.00 GB', license: 'Gemma Terms of Use', note: 'gated: accept the terms on the Hub and set a token first; 32k context' },
  { repo: 'bigcode/starcoder2-3b', architecture: 'StarCoder2 (sliding window 4,096), 30 layers x 24 heads', size: '12.1 GB', license: 'BigCode OpenRAIL-M', note: 'code model, float32 weights; 16k context' },
  { repo: 'deepseek-ai/deepseek-coder-1.3b-base', architecture: 'Llama (linear rotary scaling x4), 24 layers x 16 heads', size: '2.69 GB', license: 'DeepSeek License', note: 'code model, 16k context' },
  { repo: 'meta-llama/Llama-3.2-1B', architecture: 'Llama (llama3 rotary scaling), 16 layers x 32 heads', size: '2.47 GB', license: 'Llama 3.2 Community License', note: 'gated: accept the license on the Hub and set a token first; 128k context' },
  { repo: 'amd/AMD-Llama-135m-code', architecture: 'Llama, 12 layers x 12 heads', size: '540 MB', license: 'Apache-2.0', note: 'code fine-tune' },
  { repo: 'codeparrot/codeparrot-small', architecture: 'GPT-2, 12 layers x 12 heads', size: '457 MB', license: 'Apache-2.0', note: 'trained on Python' },
];
