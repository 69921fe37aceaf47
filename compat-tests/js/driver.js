// kafkajs driver for the compat tests: one command per run, JSON request on stdin,
// one JSON result on stdout. Bytes travel as base64. kafkajs's own logs go to stderr.
//
//   node driver.js <command> < request.json
//
// commands: create, list, produce, consume, offsets-by-time, offsets, delete, admin-ops,
// cluster-produce, cluster-consume (the virtual-cluster tests), txn, consume-to-end, group-pair
'use strict'

const { Kafka, CompressionTypes, logLevel } = require('kafkajs')

const b64 = (buf) => (buf === null || buf === undefined ? null : Buffer.from(buf).toString('base64'))
const unb64 = (s) => (s === null || s === undefined ? null : Buffer.from(s, 'base64'))

// req.ssl: { ca, cert?, key? } file paths; req.sasl: kafkajs's { mechanism, username, password },
// or { mechanism: 'oauthbearer', token } for OAUTHBEARER.
function security (req) {
  const out = {}
  if (req.ssl) {
    const fs = require('fs')
    out.ssl = { ca: [fs.readFileSync(req.ssl.ca)], servername: 'localhost' }
    if (req.ssl.cert) {
      out.ssl.cert = fs.readFileSync(req.ssl.cert)
      out.ssl.key = fs.readFileSync(req.ssl.key)
    }
  }
  if (req.sasl && req.sasl.mechanism === 'oauthbearer') {
    // req.sasl.token: the JWT the oauthBearerProvider hands kafkajs
    const token = req.sasl.token
    out.sasl = { mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value: token }) }
  } else if (req.sasl) out.sasl = req.sasl
  return out
}

function client (req) {
  return new Kafka({
    ...security(req),
    clientId: 'compat-kafkajs',
    brokers: req.bootstrap.split(','),
    connectionTimeout: 5000,
    requestTimeout: 10000,
    retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2000 },
    logLevel: logLevel.WARN,
    logCreator: () => ({ namespace, level, log }) => {
      process.stderr.write(`[kafkajs ${namespace} ${level}] ${log.message} ${JSON.stringify(log)}\n`)
    }
  })
}

async function withAdmin (req, fn) {
  const admin = client(req).admin()
  await admin.connect()
  try {
    return await fn(admin)
  } finally {
    await admin.disconnect()
  }
}

const commands = {
  create: (req) => withAdmin(req, async (admin) => {
    const created = await admin.createTopics({
      waitForLeaders: true,
      timeout: 10000,
      topics: [{ topic: req.topic, numPartitions: req.partitions, replicationFactor: 1 }]
    })
    const md = await admin.fetchTopicMetadata({ topics: [req.topic] })
    return { created, partitions: md.topics[0].partitions.map((p) => p.partitionId).sort() }
  }),

  list: (req) => withAdmin(req, async (admin) => ({ topics: await admin.listTopics() })),

  delete: (req) => withAdmin(req, async (admin) => {
    await admin.deleteTopics({ topics: [req.topic], timeout: 10000 })
    return { deleted: req.topic }
  }),

  offsets: (req) => withAdmin(req, async (admin) => ({ offsets: await admin.fetchTopicOffsets(req.topic) })),

  'offsets-by-time': (req) => withAdmin(req, async (admin) => {
    const answers = []
    for (const ts of req.timestamps) {
      const res = await admin.fetchTopicOffsetsByTimestamp(req.topic, ts)
      answers.push({ timestamp: ts, partitions: res.map((r) => ({ partition: r.partition, offset: Number(r.offset) })) })
    }
    return { answers }
  }),

  // A list of admin operations run in order on one admin connection; each answers
  // { ok: result } or { error: { name, type, message, errors } } (errors never abort the list).
  'admin-ops': (req) => withAdmin(req, async (admin) => {
    const { ConfigResourceTypes } = require('kafkajs')
    const describeErr = (e) => ({
      name: e && e.name,
      type: e && e.type,
      message: String(e && e.message),
      cause: e && e.cause ? { name: e.cause.name, type: e.cause.type, message: String(e.cause.message), partitions: (e.cause.partitions || []).map((x) => ({ partition: x.partition, error: x.error && { name: x.error.name, type: x.error.type } })) } : null,
      errors: ((e && e.errors) || []).map((x) => ({ name: x.name, type: x.type, topic: x.topic })),
      partitions: ((e && e.partitions) || []).map((x) => ({ partition: x.partition, error: x.error && { name: x.error.name, type: x.error.type } }))
    })
    const ops = {
      create: (op) => admin.createTopics({ validateOnly: !!op.validateOnly, waitForLeaders: !op.validateOnly, timeout: 10000, topics: op.topics }),
      delete: (op) => admin.deleteTopics({ topics: op.topics, timeout: 10000 }),
      list: () => admin.listTopics(),
      metadata: (op) => admin.fetchTopicMetadata({ topics: op.topics }),
      partitions: (op) => admin.createPartitions({ timeout: 10000, topicPartitions: op.topicPartitions }),
      deleteRecords: (op) => admin.deleteTopicRecords({ topic: op.topic, partitions: op.partitions }),
      offsets: async (op) => (await admin.fetchTopicOffsets(op.topic)).map((o) => ({ partition: o.partition, low: Number(o.low), high: Number(o.high) })),
      describeConfigs: (op) => admin.describeConfigs({
        includeSynonyms: !!op.includeSynonyms,
        resources: [{ type: ConfigResourceTypes[op.type], name: op.name, configNames: op.configNames }]
      }),
      alterConfigs: (op) => admin.alterConfigs({
        validateOnly: !!op.validateOnly,
        resources: [{ type: ConfigResourceTypes[op.type], name: op.name, configEntries: op.configEntries }]
      }),
      cluster: () => admin.describeCluster(),
      alterReassignments: (op) => admin.alterPartitionReassignments({ topics: op.topics, timeout: 10000 }),
      listGroups: async () => (await admin.listGroups()).groups,
      describeGroups: async (op) => (await admin.describeGroups(op.groups)).groups.map((g) => ({
        groupId: g.groupId, state: g.state, protocolType: g.protocolType, errorCode: g.errorCode, members: g.members.length
      })),
      fetchOffsets: async (op) => (await admin.fetchOffsets({ groupId: op.groupId, topics: [op.topic] }))[0].partitions.map((p) => ({ partition: p.partition, offset: Number(p.offset) })),
      setOffsets: (op) => admin.setOffsets({ groupId: op.groupId, topic: op.topic, partitions: op.partitions.map((p) => ({ partition: p.partition, offset: String(p.offset) })) }),
      resetOffsets: (op) => admin.resetOffsets({ groupId: op.groupId, topic: op.topic, earliest: !!op.earliest }),
      deleteGroups: (op) => admin.deleteGroups(op.groups),
      listReassignments: (op) => admin.listPartitionReassignments({ topics: op.topics === undefined ? null : op.topics, timeout: 10000 })
    }
    const results = []
    for (const op of req.ops) {
      try {
        results.push({ ok: await ops[op.op](op) })
      } catch (e) {
        results.push({ error: describeErr(e) })
      }
    }
    return { results }
  }),

  produce: async (req) => {
    const producer = client(req).producer({ allowAutoTopicCreation: false, idempotent: !!req.idempotent })
    await producer.connect()
    try {
      const results = []
      // One send() per chunk (req.chunk, default 20), so there are several batches per partition.
      const chunk = req.chunk || 20
      for (let i = 0; i < req.messages.length; i += chunk) {
        const res = await producer.send({
          topic: req.topic,
          acks: -1,
          timeout: 10000,
          compression: req.codec === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None,
          messages: req.messages.slice(i, i + chunk).map((m) => ({
            partition: m.partition,
            key: unb64(m.key),
            value: unb64(m.value),
            timestamp: m.timestamp === null ? undefined : String(m.timestamp),
            headers: Object.fromEntries(m.headers.map(([k, v]) => [k, unb64(v)]))
          }))
        })
        results.push(...res.map((r) => ({ partition: r.partition, baseOffset: Number(r.baseOffset), errorCode: r.errorCode })))
      }
      return { results }
    } finally {
      await producer.disconnect()
    }
  },

  // kafkajs has no manual assignment: this reads through a fresh consumer group.
  // req.readUncommitted: read aborted and open transactions' records too (default: read_committed).
  consume: async (req) => {
    const consumer = client(req).consumer({
      groupId: req.group,
      readUncommitted: !!req.readUncommitted,
      sessionTimeout: 10000,
      rebalanceTimeout: 10000,
      heartbeatInterval: 1000,
      maxWaitTimeInMs: 200
    })
    await consumer.connect()
    const records = []
    try {
      await consumer.subscribe({ topics: [req.topic], fromBeginning: true })
      await new Promise((resolve, reject) => {
        const timer = setTimeout(resolve, req.timeoutMs)
        // run() resolves at once; a crash of the consumer (no coordinator, say) comes as an event.
        consumer.on(consumer.events.CRASH, (e) => {
          clearTimeout(timer)
          reject(e.payload.error)
        })
        consumer.run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            for (const m of batch.messages) {
              records.push({
                partition: batch.partition,
                offset: Number(m.offset),
                key: b64(m.key),
                value: b64(m.value),
                timestamp: Number(m.timestamp),
                headers: Object.entries(m.headers || {}).map(([k, v]) => [k, b64(v)])
              })
            }
            if (records.length >= req.want) {
              clearTimeout(timer)
              // Give a straggler (a duplicate, say) a moment to show up as well.
              setTimeout(resolve, 300)
            }
          }
        }).catch(reject)
      })
    } finally {
      await consumer.disconnect()
    }
    return { records }
  }
}

// The virtual-cluster tests: an idempotent acks=all producer sending one record at a time
// (req.pauseMs apart) to req.partition = seq % req.partitions, while the test moves leaders
// and stops a node; answers the records acknowledged and the sends that failed.
commands['cluster-produce'] = async (req) => {
  const kafka = client({ ...req })
  const producer = kafka.producer({
    allowAutoTopicCreation: false,
    idempotent: true,
    maxInFlightRequests: 1,
    retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 }
  })
  await producer.connect()
  const acked = []
  const failed = []
  try {
    for (let seq = req.first || 0; seq < req.count; seq++) {
      const partition = seq % req.partitions
      try {
        await producer.send({ topic: req.topic, acks: -1, timeout: 10000, messages: [{ partition, value: String(seq) }] })
        acked.push({ partition, value: seq })
      } catch (e) {
        failed.push({ partition, value: seq, error: String(e && e.message) })
      }
      if (req.pauseMs) await new Promise((resolve) => setTimeout(resolve, req.pauseMs))
    }
  } finally {
    await producer.disconnect()
  }
  return { acked, failed }
}

// A group consumer committing as it goes, until req.want records or req.timeoutMs; then
// the group's committed offsets.  A crash (the consumer giving up) is an error.
commands['cluster-consume'] = async (req) => {
  const kafka = client(req)
  const consumer = kafka.consumer({ groupId: req.group, sessionTimeout: 10000, rebalanceTimeout: 10000, heartbeatInterval: 500, maxWaitTimeInMs: 200 })
  await consumer.connect()
  const records = []
  try {
    await consumer.subscribe({ topics: [req.topic], fromBeginning: true })
    await new Promise((resolve, reject) => {
      const timer = setTimeout(resolve, req.timeoutMs)
      consumer.on(consumer.events.CRASH, (e) => { clearTimeout(timer); reject(e.payload.error) })
      consumer.run({
        autoCommit: true,
        autoCommitThreshold: 1,
        eachMessage: async ({ partition, message }) => {
          records.push({ partition, offset: Number(message.offset), value: Number(message.value.toString()) })
          if (new Set(records.map((r) => r.value)).size >= req.want) { clearTimeout(timer); setTimeout(resolve, 500) }
        }
      }).catch(reject)
    })
  } finally {
    await consumer.disconnect()
  }
  const committed = await withAdmin(req, (admin) => admin.fetchOffsets({ groupId: req.group, topics: [req.topic] }))
  return { records, committed: committed[0].partitions.map((p) => ({ partition: p.partition, offset: Number(p.offset) })) }
}

// Transactions: one transactional producer (req.transactionalId) runs req.steps in order,
// each { action: 'commit' | 'abort', messages } in one transaction; answers the offsets
// each step's sends were given.
commands.txn = async (req) => {
  const producer = client(req).producer({
    allowAutoTopicCreation: false,
    transactionalId: req.transactionalId,
    idempotent: true,
    maxInFlightRequests: 1
  })
  await producer.connect()
  const steps = []
  try {
    for (const step of req.steps) {
      const txn = await producer.transaction()
      const res = await txn.send({
        topic: req.topic,
        acks: -1,
        timeout: 10000,
        messages: step.messages.map((m) => ({ key: unb64(m.key), value: unb64(m.value), partition: m.partition }))
      })
      if (step.action === 'commit') await txn.commit()
      else await txn.abort()
      steps.push({ action: step.action, results: res.map((r) => ({ partition: r.partition, baseOffset: Number(r.baseOffset) })) })
    }
  } finally {
    await producer.disconnect()
  }
  return { steps }
}

// Reads req.topic through a fresh group until every partition's last record (the high
// watermark the admin client reports at the start, minus one) has been delivered.
commands['consume-to-end'] = async (req) => {
  const ends = await withAdmin(req, async (admin) => admin.fetchTopicOffsets(req.topic))
  const want = new Map(ends.filter((o) => Number(o.high) > Number(o.low)).map((o) => [o.partition, Number(o.high) - 1]))
  const consumer = client(req).consumer({ groupId: req.group, sessionTimeout: 10000, rebalanceTimeout: 10000, heartbeatInterval: 1000, maxWaitTimeInMs: 200 })
  await consumer.connect()
  const records = []
  try {
    await consumer.subscribe({ topics: [req.topic], fromBeginning: true })
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not at the end within ${req.timeoutMs} ms: ${records.length} records`)), req.timeoutMs)
      consumer.on(consumer.events.CRASH, (e) => { clearTimeout(timer); reject(e.payload.error) })
      if (want.size === 0) { clearTimeout(timer); resolve() }
      consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) {
            records.push({ partition: batch.partition, offset: Number(m.offset), key: b64(m.key), value: b64(m.value), timestamp: Number(m.timestamp), headers: [] })
            if (want.has(batch.partition) && Number(m.offset) >= want.get(batch.partition)) want.delete(batch.partition)
          }
          if (want.size === 0) { clearTimeout(timer); resolve() }
        }
      }).catch(reject)
    })
  } finally {
    await consumer.disconnect()
  }
  return { records }
}

// Two members of one group: member a joins alone and reads the first req.perPhase records,
// member b joins (a rebalance), then req.perPhase more records are produced and read.  Each
// record is committed (OffsetCommit with the member's generation) once processed.  Answers
// every assignment each member was given (GROUP_JOIN events), the records each read, and
// the group's committed offsets after both left.
commands['group-pair'] = async (req) => {
  const kafka = client(req)
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  const produce = async (from) => {
    const messages = []
    for (let v = from; v < from + req.perPhase; v++) messages.push({ partition: v % req.partitions, value: String(v) })
    await producer.send({ topic: req.topic, acks: -1, messages })
  }
  const joins = { a: [], b: [] }
  const records = []
  const distinct = () => new Set(records.map((r) => r.value)).size
  const waitFor = (what, ok) => new Promise((resolve, reject) => {
    const started = Date.now()
    const tick = () => {
      if (ok()) return resolve()
      if (Date.now() - started > req.timeoutMs) return reject(new Error(`timed out waiting for ${what}: ${JSON.stringify({ joins, records: records.length })}`))
      setTimeout(tick, 50)
    }
    tick()
  })
  const member = async (name) => {
    const consumer = kafka.consumer({ groupId: req.group, sessionTimeout: 10000, rebalanceTimeout: 10000, heartbeatInterval: 500, maxWaitTimeInMs: 200 })
    consumer.on(consumer.events.GROUP_JOIN, (e) => joins[name].push((e.payload.memberAssignment[req.topic] || []).slice().sort()))
    await consumer.connect()
    await consumer.subscribe({ topics: [req.topic], fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        records.push({ member: name, partition, offset: Number(message.offset), value: Number(message.value.toString()) })
        await consumer.commitOffsets([{ topic: req.topic, partition, offset: String(Number(message.offset) + 1) }])
      }
    })
    return consumer
  }
  let a, b
  try {
    await produce(0)
    a = await member('a')
    await waitFor('member a to read the first records', () => distinct() >= req.perPhase)
    b = await member('b')
    await waitFor('the rebalance', () => joins.b.length >= 1 && joins.a.length >= 2)
    await produce(req.perPhase)
    await waitFor('every record', () => distinct() >= 2 * req.perPhase)
  } finally {
    if (b) await b.disconnect()
    if (a) await a.disconnect()
    await producer.disconnect()
  }
  const committed = await withAdmin(req, (admin) => admin.fetchOffsets({ groupId: req.group, topics: [req.topic] }))
  return { joins, records, committed: committed[0].partitions.map((p) => ({ partition: p.partition, offset: Number(p.offset) })) }
}

async function main () {
  const command = process.argv[2]
  if (!commands[command]) throw new Error(`unknown command ${command}`)
  let input = ''
  for await (const chunk of process.stdin) input += chunk
  const result = await commands[command](JSON.parse(input))
  process.stdout.write(JSON.stringify(result) + '\n')
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`driver error: ${err && err.stack ? err.stack : err}\n`)
    process.stdout.write(JSON.stringify({ error: String(err && err.message ? err.message : err), type: err && err.name }) + '\n')
    process.exit(1)
  }
)
