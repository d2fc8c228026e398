// Package dist runs ppool's tasks on other machines, over NATS JetStream.
//
// It has
//
//   - an embedded NATS server with JetStream (StartServer), for a laptop or
//     a first cluster; real deployments use their own NATS servers;
//   - connection options following the nats CLI (ConnOptions, Connect):
//     --nats or NATS_URL, --creds, --nkey, --tlscert, --tlskey, --tlsca;
//   - agents (NewAgent, Agent.Run): each runs a local pool of its machine's
//     workers and takes tasks from a work-queue stream, one pull per free
//     worker, so that it never holds a task it cannot start; it heartbeats
//     long tasks (InProgress every third of AckWait), publishes a result
//     per task on a results stream, then acks it with its next pull, in
//     one message (+NXT), the pull's answer confirming the ack as a
//     DoubleAck's reply would (a waited ack when the pull goes unanswered);
//   - a registry of live agents, a KV bucket with a TTL that each agent
//     refreshes every quarter of it (ListAgents);
//   - the run's side (NewExecutor, a jobs.Executor): it creates the queue,
//     publishes a run's tasks on a subject of its own (RunID), no more than
//     the live agents' workers, and collects one result per task, writing
//     its output where the task asked.
//
// A task message (TaskMessage) carries data, never code: a jobs.Task of a
// kind built into the agent's binary. The agent chooses where outputs go,
// inside its cache folder, whatever the task names. Files move by content
// (FileRef, named by SHA-256): inline in the message when small, else
// through the Object Store bucket FileBucket; the agent fetches a task's
// input files into its cache (once per file), and its output comes back
// in the result (ResultMessage) or the bucket. Split tasks' parts and
// merges run on agents like whole tasks.
//
// Delivery is at least once: a task whose agent dies is delivered again
// after AckWait, and its result says which delivery it came from; the
// Executor keeps one result per task. A task delivered MaxDeliver times
// without a result fails (ErrDeliveriesExhausted) and leaves the queue.
//
// Packages pool and jobs never import dist.
package dist
