import { ServiceUnavailableError } from "./result";

/** At most `size` tasks run at once; the others wait their turn, first come first served. */
export interface Slots {
  /**
   * Runs `task` in a slot. A task still waiting after `maxWaitMs` is dropped, never run, and
   * rejects with ServiceUnavailableError (503 with Retry-After): under a flood the queue sheds
   * work its callers stopped waiting for, instead of running it later for nobody.
   */
  run<T>(task: () => Promise<T>): Promise<T>;
  /** Tasks waiting for a slot right now. */
  readonly waiting: number;
}

export function createSlots(size: number, options: { maxWaitMs?: number } = {}): Slots {
  if (!Number.isInteger(size) || size < 1) throw new Error("slots: size must be a positive integer");
  const maxWaitMs = options.maxWaitMs ?? 5000;
  let free = size;
  const queue: (() => void)[] = [];
  const release = () => {
    // The slot passes straight to the next in line, or is freed.
    const next = queue.shift();
    if (next) next();
    else free++;
  };
  return {
    async run(task) {
      if (free > 0) free--;
      else {
        await new Promise<void>((resolve, reject) => {
          const turn = () => {
            clearTimeout(timer);
            resolve();
          };
          const timer = setTimeout(() => {
            queue.splice(queue.indexOf(turn), 1);
            reject(new ServiceUnavailableError("deadline"));
          }, maxWaitMs);
          queue.push(turn);
        });
      }
      try {
        return await task();
      } finally {
        release();
      }
    },
    get waiting() {
      return queue.length;
    },
  };
}
