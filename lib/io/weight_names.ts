/** Where known checkpoints keep tensors that are read on their own (the label space's table, a partial download). */

/** The input-token embedding table, by checkpoint family. */
export const EMBEDDING_NAMES = [
  'transformer.token_embeddings.weight', // OpenELM
  'model.embed_tokens.weight', // LLaMA, TinyLlama, Phi-2, Qwen2
  'model.language_model.embed_tokens.weight', // TinyLLaVA wrappers
  'language_model.model.embed_tokens.weight',
  'transformer.wte.weight', // GPT-2 family
  'embed_tokens.weight',
];

/** A CLIP or SigLIP checkpoint's vision side: the tower and CLIP's projection (not the text tower). */
export function isVisionTensor(name: string): boolean {
  return name.startsWith('vision_model.') || name === 'visual_projection.weight';
}
