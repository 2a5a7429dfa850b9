// KafkaJS against millstream's Kafka door: admin, producer with keys and headers, a consumer
// group. Prints one JSON line with what it saw; tests/kafka_door/test_kcat_kafkajs.py checks it.
// Usage: node kafkajs-scenario.mjs HOST:PORT TOPIC
import { Kafka, logLevel } from "kafkajs";

const [broker, topic] = process.argv.slice(2);
const kafka = new Kafka({ clientId: "kafkajs-scenario", brokers: [broker], logLevel: logLevel.ERROR });

const admin = kafka.admin();
await admin.connect();
const created = await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
const listed = await admin.listTopics();

const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
await producer.connect();
const sent = await producer.send({
  topic,
  acks: -1,
  messages: Array.from({ length: 20 }, (_, i) => ({
    key: `k${i % 4}`,
    value: `v${i}`,
    headers: { n: String(i) },
  })),
});
await producer.disconnect();

const consumer = kafka.consumer({ groupId: `${topic}-group`, sessionTimeout: 6000, heartbeatInterval: 500 });
await consumer.connect();
await consumer.subscribe({ topic, fromBeginning: true });
const seen = [];
await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`only ${seen.length} messages`)), 30000);
  consumer
    .run({
      eachMessage: async ({ partition, message }) => {
        seen.push({
          partition,
          offset: Number(message.offset),
          key: message.key.toString(),
          value: message.value.toString(),
          n: message.headers.n.toString(),
        });
        if (seen.length === 20) {
          clearTimeout(timer);
          resolve();
        }
      },
    })
    .catch(reject);
});
await consumer.disconnect();
const offsets = await admin.fetchOffsets({ groupId: `${topic}-group`, topics: [topic] });
const groups = await admin.listGroups();
await admin.disconnect();
console.log(JSON.stringify({ created, listed, sent, seen, offsets, groups }));
