// Drives `mmdb serve` with Qdrant's official REST client, step by step.
// Usage: node qdrant_client.mjs URL STEPS.json OUT.json [API_KEY]
// Each step is {op, collection, args}; its answer (or the error the client
// threw) is written to OUT.json in order, for the Go test to check against
// mmdb's Go API.
import { QdrantClient } from "@qdrant/js-client-rest";
import { readFileSync, writeFileSync } from "node:fs";

const [url, stepsFile, outFile, apiKey] = process.argv.slice(2);
const client = new QdrantClient({ url, apiKey: apiKey || undefined, checkCompatibility: false });
const steps = JSON.parse(readFileSync(stepsFile, "utf8"));
const out = [];

for (const step of steps) {
  const c = step.collection;
  const a = step.args ?? {};
  try {
    let result;
    switch (step.op) {
      case "create": result = await client.createCollection(c, a); break;
      case "exists": result = await client.collectionExists(c); break;
      case "list": result = await client.getCollections(); break;
      case "info": result = await client.getCollection(c); break;
      case "upsert": {
        // In batches, as a loader would.
        const size = step.batch ?? 100;
        for (let i = 0; i < a.points.length; i += size) {
          result = await client.upsert(c, { wait: true, points: a.points.slice(i, i + size) });
        }
        break;
      }
      case "query": result = await client.query(c, a); break;
      case "queryBatch": result = await client.queryBatch(c, a); break;
      case "queryGroups": result = await client.queryGroups(c, a); break;
      case "createPayloadIndex": result = await client.createPayloadIndex(c, { wait: true, ...a }); break;
      case "retrieve": result = await client.retrieve(c, a); break;
      case "count": result = await client.count(c, a); break;
      case "delete": result = await client.delete(c, { wait: true, ...a }); break;
      case "scroll": {
        // Every page, following next_page_offset as a client does.
        const ids = [];
        let offset = undefined;
        let pages = 0;
        do {
          const page = await client.scroll(c, { ...a, offset });
          for (const p of page.points) ids.push(p.id);
          offset = page.next_page_offset ?? undefined;
          pages++;
        } while (offset !== undefined && pages < 1000);
        result = { ids, pages };
        break;
      }
      case "snapshot": {
        const made = await client.createSnapshot(c);
        const listed = await client.listSnapshots(c);
        result = { made, listed };
        break;
      }
      case "setPayload": result = await client.setPayload(c, { wait: true, ...a }); break;
      case "overwritePayload": result = await client.overwritePayload(c, { wait: true, ...a }); break;
      case "deletePayload": result = await client.deletePayload(c, { wait: true, ...a }); break;
      case "clearPayload": result = await client.clearPayload(c, { wait: true, ...a }); break;
      case "updateVectors": result = await client.updateVectors(c, { wait: true, ...a }); break;
      case "deleteCollection": result = await client.deleteCollection(c); break;
      default: throw new Error(`unknown op ${step.op}`);
    }
    out.push({ op: step.op, result });
  } catch (e) {
    out.push({ op: step.op, error: String(e?.message ?? e), status: e?.status ?? null, data: e?.data ?? null });
  }
}
writeFileSync(outFile, JSON.stringify(out));
