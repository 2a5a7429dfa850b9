// KafkaJS driven over stdin/stdout for tests/kafka_door/clients/_kafkajs.py: one JSON request
// per line ({id, op, args}), one JSON answer per line ({id, ok, result} or {id, ok: false,
// error}), answered as each finishes. Bytes travel as base64 strings (null stays null).
// Usage: node kafkajs-driver.mjs HOST:PORT
import readline from "node:readline";
import kafkajs from "kafkajs";

const { CompressionTypes, ConfigResourceTypes, Kafka, logLevel } = kafkajs;

const [broker] = process.argv.slice(2);
const kafka = new Kafka({
  clientId: "kafkajs-matrix",
  brokers: [broker],
  logLevel: logLevel.NOTHING,
  retry: { retries: 2, initialRetryTime: 100 },
});
const admin = kafka.admin();
await admin.connect();

const bytes = (b64) => (b64 === null || b64 === undefined ? null : Buffer.from(b64, "base64"));
const b64 = (buffer) => (buffer === null || buffer === undefined ? null : buffer.toString("base64"));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A consumer whose eachMessage hands each message to a pending poll and waits for it to be
// taken, so KafkaJS is never more than one message ahead of what the test has polled.
class Handoff {
  constructor(groupId, maxWaitTimeInMs) {
    this.consumer = kafka.consumer({
      groupId,
      maxWaitTimeInMs,
      sessionTimeout: 10000,
      heartbeatInterval: 200,
      retry: { retries: 2, initialRetryTime: 100 },
    });
    this.queue = []; // [{message, take}]
    this.polled = new Map(); // partition -> next offset after what was polled
    this.assigned = [];
    this.partitions = null; // assign(): only these partitions are handed out
    this.stopped = false;
    this.consumer.on(this.consumer.events.GROUP_JOIN, ({ payload }) => {
      this.assigned = Object.values(payload.memberAssignment).flat();
      // a commit covers the partitions this member has now, as Kafka consumers' commit() does
      for (const partition of this.polled.keys()) {
        if (!this.assigned.includes(partition)) this.polled.delete(partition);
      }
    });
  }

  async start(topic, partitions) {
    this.topic = topic;
    this.partitions = partitions;
    await this.consumer.connect();
    await this.consumer.subscribe({ topic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachMessage: ({ partition, message }) =>
        new Promise((take) => {
          if (this.stopped) return take();
          this.queue.push({ message: { partition, ...message }, take });
        }),
    });
  }

  seek(partition, offset) {
    this.queue = this.queue.filter(({ message, take }) => message.partition !== partition || take());
    this.consumer.seek({ topic: this.topic, partition, offset: String(offset) });
  }

  async poll(count, timeoutMs) {
    const out = [];
    const deadline = Date.now() + timeoutMs;
    while (out.length < count && Date.now() < deadline) {
      const next = this.queue.shift();
      if (!next) {
        await sleep(5);
        continue;
      }
      const m = next.message;
      next.take();
      if (this.partitions && !this.partitions.includes(m.partition)) continue;
      this.polled.set(m.partition, Number(m.offset) + 1);
      out.push({
        partition: m.partition,
        offset: Number(m.offset),
        key: b64(m.key),
        value: b64(m.value),
        headers: Object.entries(m.headers ?? {}).flatMap(([k, v]) =>
          (Array.isArray(v) ? v : [v]).map((one) => [k, b64(one)]),
        ),
        timestamp: Number(m.timestamp),
      });
    }
    return out;
  }

  async commit(offsets) {
    const entries = offsets ?? [...this.polled].map(([partition, offset]) => ({ partition, offset }));
    await this.consumer.commitOffsets(
      entries.map(({ partition, offset }) => ({ topic: this.topic, partition, offset: String(offset) })),
    );
  }

  async close() {
    this.stopped = true;
    for (const { take } of this.queue.splice(0)) take();
    await this.consumer.disconnect();
  }
}

const consumers = new Map();
let nextConsumer = 0;
const COMPRESSION = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP };

const ops = {
  async cluster() {
    const described = await admin.describeCluster();
    const { topics } = await admin.fetchTopicMetadata();
    return {
      brokers: described.brokers.map((b) => [b.nodeId, b.host, b.port]),
      topics: Object.fromEntries(topics.map((t) => [t.name, t.partitions.length])),
    };
  },
  async create_topic({ name, partitions, configs }) {
    const configEntries = Object.entries(configs).map(([n, value]) => ({ name: n, value }));
    return admin.createTopics({
      topics: [{ topic: name, numPartitions: partitions, configEntries }],
      waitForLeaders: true,
    });
  },
  async produce({ topic, records, acks, compression, idempotent }) {
    const producer = kafka.producer(
      idempotent ? { idempotent: true, maxInFlightRequests: 1 } : { allowAutoTopicCreation: true },
    );
    await producer.connect();
    try {
      const sent = await producer.send({
        topic,
        acks: { 0: 0, 1: 1, all: -1 }[acks],
        compression: COMPRESSION[compression],
        messages: records.map((r) => ({
          key: bytes(r.key),
          value: bytes(r.value),
          headers: Object.fromEntries(r.headers.map(([k, v]) => [k, bytes(v)])),
          ...(r.partition === null ? {} : { partition: r.partition }),
          ...(r.timestamp === null ? {} : { timestamp: String(r.timestamp) }),
        })),
      });
      return sent.map((s) => ({ partition: s.partition, base_offset: Number(s.baseOffset) }));
    } finally {
      await producer.disconnect();
    }
  },
  async consumer_open({ group, max_wait_ms }) {
    const id = nextConsumer++;
    consumers.set(id, new Handoff(group ?? `assign-only-${process.pid}-${id}`, max_wait_ms));
    return id;
  },
  async consumer_start({ id, topic, partitions }) {
    await consumers.get(id).start(topic, partitions);
  },
  async consumer_seek({ id, partition, offset }) {
    consumers.get(id).seek(partition, offset);
  },
  async consumer_poll({ id, count, timeout_ms }) {
    return consumers.get(id).poll(count, timeout_ms);
  },
  async consumer_assignment({ id }) {
    return consumers.get(id).assigned;
  },
  async consumer_commit({ id, offsets }) {
    await consumers.get(id).commit(offsets);
  },
  async consumer_close({ id }) {
    await consumers.get(id).close();
    consumers.delete(id);
  },
  async committed({ group, topic }) {
    const [found] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    return found.partitions.map((p) => [p.partition, Number(p.offset)]);
  },
  async offsets({ topic, spec }) {
    const found =
      spec === "earliest" || spec === "latest"
        ? (await admin.fetchTopicOffsets(topic)).map((p) => ({
            partition: p.partition,
            offset: spec === "earliest" ? p.low : p.high,
          }))
        : await admin.fetchTopicOffsetsByTimestamp(topic, spec);
    return found.map((p) => [p.partition, Number(p.offset)]);
  },
  async describe_configs({ topic }) {
    const { resources } = await admin.describeConfigs({
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
      includeSynonyms: false,
    });
    return Object.fromEntries(resources[0].configEntries.map((c) => [c.configName, c.configValue]));
  },
  async list_groups() {
    return (await admin.listGroups()).groups.map((g) => g.groupId);
  },
  async describe_group({ group }) {
    const [described] = (await admin.describeGroups([group])).groups;
    return { state: described.state, members: described.members.length, error: described.errorCode };
  },
  async create_partitions({ topic, total }) {
    await admin.createPartitions({ topicPartitions: [{ topic, count: total }] });
  },
  async delete_records({ topic, before }) {
    const partitions = Object.entries(before).map(([p, offset]) => ({
      partition: Number(p),
      offset: String(offset),
    }));
    // deleteTopicRecords looks the leaders up in the admin's metadata cache without loading
    // the topic into it first ("Could not find the leader for the partition" otherwise)
    await admin.fetchTopicMetadata({ topics: [topic] });
    await admin.deleteTopicRecords({ topic, partitions });
  },
  async delete_topic({ name }) {
    await admin.deleteTopics({ topics: [name] });
  },
};

// The Kafka error code behind an error, wherever KafkaJS wrapped it (retries, aggregates).
function errorCode(error) {
  for (let e = error; e; e = e.originalError ?? e.cause ?? e.errors?.[0] ?? e.partitions?.[0]?.error) {
    if (typeof e.code === "number") return e.code;
  }
  return null;
}

const answer = (reply) => process.stdout.write(`${JSON.stringify(reply)}\n`);
const lines = readline.createInterface({ input: process.stdin });
lines.on("line", async (line) => {
  const { id, op, args } = JSON.parse(line);
  try {
    answer({ id, ok: true, result: (await ops[op](args)) ?? null });
  } catch (error) {
    answer({ id, ok: false, error: { code: errorCode(error), name: error.name, message: error.message } });
  }
});
lines.on("close", async () => {
  for (const consumer of consumers.values()) await consumer.close();
  await admin.disconnect();
  process.exit(0);
});
