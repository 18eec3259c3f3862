"""Prompts of the published models, verbatim: changing a character changes the scores."""

MEDPRM_RAG_SYSTEM = (
    "You are an evaluator assessing the logicality and validity of the reasoning in each step of "
    "the given explanation. In order to support the evaluation, the relevant documents, the "
    "question, and the explanation are provided sequentially. If the reasoning contains errors, "
    "output - after that step. If the reasoning in a step is logical and valid, output + after "
    "that step. "
)
"""Med-PRM reward model's system prompt when documents are given (the trailing space is real)."""

MEDPRM_SYSTEM = (
    "You are an evaluator assessing the logicality and validity of the reasoning in each step of "
    "the given explanation. In order to support the evaluation, the question and the explanation "
    "are provided. If the reasoning contains errors, output - after that step. If the reasoning "
    "in a step is logical and valid, output + after that step."
)
"""Med-PRM reward model's system prompt without documents."""

MEDPRM_POLICY_SYSTEM = (
    "Solve the following question step-by-step. Do not analyze individual options in a single "
    "step. Each step of your explanation must start with 'Step {number}:' format. You must "
    "provide the answer using the phrase 'the answer is (option alphabet)' at the end of your "
    "step."
)
"""Med-PRM's policy system prompt for multiple-choice questions."""

MEDPRM_OPEN_POLICY_SYSTEM = (
    "Solve the following question step-by-step. Each step of your explanation must start with "
    "'## Step {number}: ' format. The final answer must output a concise and clearly defined "
    "diagnostic term.  You must provide the final answer using the phrase "
    "'## Final Diagnosis: {Disease name}' at the end of your final step. Please refer to the "
    "following example. ## Final Diagnosis: Multiple Sclerosis"
)
"""Med-PRM's policy system prompt for open (diagnosis) questions."""


def prm_user_message(question_text: str, explanation: str, documents: list[str]) -> str:
    """Med-PRM's user message: `Document i: …` blocks, then the question and the explanation."""
    doc_block = "".join(f"Document {i + 1}: {d}\n\n" for i, d in enumerate(documents))
    return f"{doc_block}Question: {question_text}\n\nExplanation: {explanation}"
