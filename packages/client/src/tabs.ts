import type { SignedOutReason } from "./client.js";
import type { User } from "./types.js";

/** An access token as the tabs of one browser pass it around: in memory only, never stored. */
export interface HeldToken {
  accessToken: string;
  user: User;
  sessionId: string | null;
  receivedAtMs: number;
  expiresAtMs: number;
}

/** What the tabs of one origin say to each other about one authlith service. */
export type TabMessage =
  | { type: "token"; from: string; event: "signed_in" | "refreshed"; token: HeldToken }
  | { type: "signed_out"; from: string; reason: SignedOutReason; sessionId: string | null }
  | { type: "need_token"; from: string; id: string }
  | { type: "have_token"; from: string; to: string; id: string; token: HeldToken | null };

export interface TabHandlers {
  /** Another tab signed in or refreshed. */
  onToken(event: "signed_in" | "refreshed", token: HeldToken): void;
  /** Another tab signed out, or found the session ended. */
  onSignedOut(reason: SignedOutReason, sessionId: string | null): void;
  /** This tab's token, for a tab that asks. */
  current(): HeldToken | null;
}

/**
 * Coordination between the tabs (and frames, and clients) of one origin that talk to one service
 * with the cookie transport, where they share one refresh cookie:
 * - `exclusive` runs refreshes one at a time across tabs (Web Locks), so two tabs never spend the
 *   same refresh token;
 * - `ask` gets a usable access token from another tab instead of rotating again (BroadcastChannel;
 *   Web Locks tell how many tabs to wait for, so no answer is waited for that cannot come);
 * - `announce` tells the others about a sign-in, a refresh or a sign-out.
 * Where a browser lacks an API, that part does nothing: without locks the server's grace window
 * still gives concurrent refreshes of one token the same new token; without BroadcastChannel each
 * tab refreshes for itself.
 */
export interface Tabs {
  exclusive<T>(task: () => Promise<T>): Promise<T>;
  ask(usable: (token: HeldToken) => boolean): Promise<HeldToken | null>;
  announce(message: DistributiveOmit<Extract<TabMessage, { type: "token" | "signed_out" }>, "from">): void;
  close(): void;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** How long to wait for a tab that holds its presence lock but does not answer (frozen, busy). */
const ANSWER_TIMEOUT_MS = 1000;

export const noTabs: Tabs = {
  exclusive: (task) => task(),
  ask: async () => null,
  announce: () => {},
  close: () => {},
};

const randomId = () => `${Date.now().toString(36)}.${Math.random().toString(36).slice(2)}`;

function isTabMessage(value: unknown): value is TabMessage {
  const message = value as Partial<TabMessage> | null;
  return typeof message === "object" && message !== null && typeof message.type === "string" && typeof message.from === "string";
}

export function createTabs(key: string, handlers: TabHandlers): Tabs {
  const locks = typeof navigator !== "undefined" ? navigator.locks : undefined;
  const hasLocks = typeof locks?.request === "function" && typeof locks.query === "function";
  const hasChannel = typeof BroadcastChannel === "function";
  if (!hasLocks && !hasChannel) return noTabs;

  const me = randomId();
  const prefix = `authlith:${key}`;
  const presencePrefix = `${prefix}:tab:`;
  /** Open questions of this tab: an answer handler and a way to give up. */
  const pending = new Map<string, { answer(token: HeldToken | null): void; cancel(): void }>();
  const channel = hasChannel ? new BroadcastChannel(prefix) : null;
  let closed = false;

  // Presence: a lock held for this client's life. Other tabs count these to know how many
  // answers to wait for; the browser releases it when the tab goes away, however it goes.
  let leave: () => void = () => {};
  if (hasLocks) {
    void locks!.request(`${presencePrefix}${me}`, () =>
      closed ? Promise.resolve() : new Promise<void>((resolve) => (leave = resolve)),
    );
  }

  const post = (message: TabMessage) => {
    if (!closed) channel?.postMessage(message);
  };

  if (channel) {
    channel.onmessage = (event: MessageEvent) => {
      const message: unknown = event.data;
      if (!isTabMessage(message) || message.from === me) return;
      switch (message.type) {
        case "token":
          handlers.onToken(message.event, message.token);
          break;
        case "signed_out":
          handlers.onSignedOut(message.reason, message.sessionId);
          break;
        case "need_token":
          post({ type: "have_token", from: me, to: message.from, id: message.id, token: handlers.current() });
          break;
        case "have_token":
          if (message.to === me) pending.get(message.id)?.answer(message.token);
          break;
      }
    };
  }

  async function otherTabs(): Promise<number> {
    const { held = [] } = await locks!.query();
    return held.filter((lock) => lock.name?.startsWith(presencePrefix) && lock.name !== `${presencePrefix}${me}`).length;
  }

  return {
    exclusive(task) {
      if (!hasLocks || closed) return task();
      return locks!.request(`${prefix}:refresh`, task) as Promise<Awaited<ReturnType<typeof task>>>;
    },

    async ask(usable) {
      if (!hasLocks || !channel || closed) return null;
      const tabs = await otherTabs();
      if (tabs === 0) return null;
      const id = randomId();
      return new Promise<HeldToken | null>((resolve) => {
        let answers = 0;
        const finish = (token: HeldToken | null) => {
          clearTimeout(timer);
          pending.delete(id);
          resolve(token);
        };
        const timer = setTimeout(() => finish(null), ANSWER_TIMEOUT_MS);
        pending.set(id, {
          answer(token) {
            if (token && usable(token)) finish(token);
            else if (++answers >= tabs) finish(null);
          },
          cancel: () => finish(null),
        });
        post({ type: "need_token", from: me, id });
      });
    },

    announce(message) {
      post({ ...message, from: me } as TabMessage);
    },

    close() {
      closed = true;
      for (const question of [...pending.values()]) question.cancel();
      channel?.close();
      leave();
    },
  };
}
