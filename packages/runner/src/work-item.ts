/** A work item as the runner reads it from the environment's work queue. */
export type WorkItem = {
  id: string;
  latest_heartbeat_at?: string | null;
  environment_id: string;
  secret: string | null;
  data: { type?: string; id: string };
};
