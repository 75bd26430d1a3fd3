/** TinyEmo's reasoning instruction and the form of its answers (the synthetic data asks it, the reasoner prompts it). */

/** The instruction; the MM-LLM sees it with the projector's label as the hint. */
export function reasonInstruction(labels: readonly string[], hint: string): string {
  return (
    'Provide emotional reasoning about the image, on what you feel and how is the depicted emotion. ' +
    'Also choose the emotion that best corresponds to the image from the following options:\n\n' +
    `Labels: [${labels.join(', ')}]\n\nImportant: note that the correct label is ${hint}.`
  );
}

const REASON = /^Reasoning:\s*([\s\S]+?)\n\nPredicted Label:\s*(.+?)\s*$/;

/** Parses a TinyEmo answer into its fields (undefined when it does not have the form). */
export function parseReasoning(answer: string): { reasoning: string; label: string } | undefined {
  const m = REASON.exec(answer.trim());
  return m ? { reasoning: m[1].trim(), label: m[2].replace(/[.\s]+$/, '') } : undefined;
}
