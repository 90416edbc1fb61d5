ALTER TABLE "sessions" ADD COLUMN "refresh_window_started_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "sessions" ADD COLUMN "refresh_window_count" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
-- Every refresh rewrites one sessions row without touching an indexed column: leave room on each
-- page so those updates stay heap-only (HOT) and never touch the indexes.
ALTER TABLE "sessions" SET (fillfactor = 80);
