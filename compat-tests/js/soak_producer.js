// kafkajs worker of `python -m bench.soak`: an idempotent acks=all producer that runs
// until the stop file exists (or max seconds pass), across broker kills.
//
//   node soak_producer.js <bootstrap> <topic> <partitions> <out.jsonl> <stop file> <max seconds>
//
// Each send carries BATCH_RECORDS records for one partition (partitions taken in turn),
// so the record at index i of a send is at baseOffset + i.  Writes one JSON line per
// acknowledged record ({"ack", "p", "o"}), {"error"} lines for failures; after a failed
// send the producer is replaced (a new producer id) and failed records are never re-sent.
'use strict'

const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')

const BATCH_RECORDS = 20
const [bootstrap, topic, partitionsArg, outPath, stopPath, maxSecondsArg] = process.argv.slice(2)
const partitions = Number(partitionsArg)
const deadline = Date.now() + Number(maxSecondsArg) * 1000
const out = fs.openSync(outPath, 'a')
const write = (obj) => fs.writeSync(out, JSON.stringify(obj) + '\n')
const stopping = () => fs.existsSync(stopPath) || Date.now() > deadline

const kafka = new Kafka({
  clientId: 'soak-kafkajs',
  brokers: [bootstrap],
  connectionTimeout: 3000,
  requestTimeout: 10000,
  retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 2000 },
  logLevel: logLevel.NOTHING
})

async function main () {
  write({ started: 'kafkajs' })
  let incarnation = 0
  let partition = 0
  while (!stopping()) {
    incarnation += 1
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
    try {
      await producer.connect()
    } catch (err) {
      write({ error: `connect: ${err.message}` })
      await new Promise((resolve) => setTimeout(resolve, 500))
      continue
    }
    let seq = 0
    let failed = false
    while (!failed && !stopping()) {
      const values = []
      for (let i = 0; i < BATCH_RECORDS; i++) values.push(`js:${incarnation}:${seq++}`)
      partition = (partition + 1) % partitions
      try {
        const meta = await producer.send({
          topic,
          acks: -1,
          messages: values.map((v) => ({ value: v, partition }))
        })
        const base = Number(meta[0].baseOffset)
        values.forEach((v, i) => write({ ack: v, p: partition, o: base + i }))
      } catch (err) {
        write({ error: `send: ${err.message}` })
        failed = true
      }
    }
    try {
      await producer.disconnect()
    } catch (err) {
      write({ error: `disconnect: ${err.message}` })
    }
  }
  write({ stopped: 'kafkajs' })
}

main().then(() => process.exit(0), (err) => {
  write({ error: `fatal: ${err.stack}` })
  process.exit(1)
})
