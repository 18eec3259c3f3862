"""Questions and text in: the records (`Question`, `Solution`, `StepScores`, `Item`), step
marking and answer extraction, option lines, prompts, the shapes of stored records, file
reading and writing with located errors, the question sets, and the per-solution confidence
summaries of a policy's tokens. Imports only the base modules (`config`, `console`)."""
