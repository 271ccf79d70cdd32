/**
 * Work in steps: a computation written as a generator that yields between units of work (a window
 * and layer, a layer and head) runs to completion at once where nothing waits on it (the CLI, the
 * benchmarks) and in slices on the extension host, where a hover or a keystroke must not wait
 * behind a 24k-token file's post-processing. No `vscode` import.
 */

/** Runs the steps to the end, at once. */
export function runSteps<T>(steps: Generator<void, T>): T {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/** Runs the steps in slices of about `sliceMs`, yielding to the event loop between slices. */
export async function runStepsSliced<T>(steps: Generator<void, T>, sliceMs = 15): Promise<T> {
  let deadline = performance.now() + sliceMs;
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    if (performance.now() >= deadline) {
      await nextTurn();
      deadline = performance.now() + sliceMs;
    }
  }
}

/** The next turn of the event loop: setImmediate in Node, a zero timeout where there is none (a browser). */
function nextTurn(): Promise<void> {
  return new Promise<void>((resolve) => (typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0)));
}
