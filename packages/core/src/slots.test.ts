import { describe, expect, it } from "vitest";
import { isServiceUnavailable } from "./result";
import { createSlots } from "./slots";

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

describe("createSlots", () => {
  it("runs at most `size` tasks at once, the rest in arrival order, and passes results and failures through", async () => {
    const slots = createSlots(2);
    let running = 0;
    let most = 0;
    const order: number[] = [];
    const task = (i: number) => async () => {
      running++;
      most = Math.max(most, running);
      await tick();
      order.push(i);
      running--;
      if (i === 3) throw new Error("task 3 failed");
      return i * 10;
    };
    const results = await Promise.allSettled([0, 1, 2, 3, 4, 5].map((i) => slots.run(task(i))));
    expect(most).toBe(2);
    expect(order.slice(0, 2).sort()).toEqual([0, 1]);
    expect(order.slice(2, 4).sort()).toEqual([2, 3]);
    expect(results.map((r) => (r.status === "fulfilled" ? r.value : (r.reason as Error).message))).toEqual([0, 10, 20, "task 3 failed", 40, 50]);
    expect(slots.waiting).toBe(0);
    // A failed task gave its slot back: two run at once again.
    running = 0;
    most = 0;
    await Promise.all([slots.run(task(6)), slots.run(task(7)), slots.run(task(8))]);
    expect(most).toBe(2);
  });

  it("drops a task that waited too long (never run; a 503 for its caller), and the queue moves on", async () => {
    const slots = createSlots(1, { maxWaitMs: 30 });
    let release!: () => void;
    const holder = slots.run(() => new Promise<void>((resolve) => (release = resolve)));
    let ran = false;
    const dropped = slots.run(async () => {
      ran = true;
    });
    const failure = await dropped.catch((error: unknown) => error);
    expect(isServiceUnavailable(failure)).toBe(true);
    expect(ran).toBe(false);
    expect(slots.waiting).toBe(0);
    const next = slots.run(async () => "next");
    release();
    await holder;
    expect(await next).toBe("next");
    expect(ran).toBe(false);
  });

  it("refuses a size that is not a positive integer", () => {
    expect(() => createSlots(0)).toThrow();
    expect(() => createSlots(1.5)).toThrow();
  });
});
