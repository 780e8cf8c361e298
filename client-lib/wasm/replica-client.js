// The page's side of the replica worker (replica-worker.js): each call is a promise of the
// worker's answer. A failed call rejects with an Error whose `code` is fieldsync.h's fs_errc
// and whose `name` its short name ("network", "not_found", ...).
//
//   const replica = new FieldsyncReplica('/app/replica-worker.js');
//   await replica.call('open', {name: 'fieldsync.db'});
//   const id = await replica.call('put', {collection, unit_id, data});
//   replica.onprogress = (p) => ...;   // during a sync: {phase, pushed, to_push, pulled}
'use strict';

class FieldsyncReplica {
  constructor(workerUrl) {
    this.worker = new Worker(workerUrl);
    this.waiting = new Map();
    this.nextId = 1;
    this.onprogress = null;
    this.worker.onmessage = ({ data }) => {
      if (data.progress) {
        if (this.onprogress) this.onprogress(data.progress);
        return;
      }
      const w = this.waiting.get(data.id);
      if (!w) return;
      this.waiting.delete(data.id);
      if (data.ok) {
        w.resolve(data.value);
      } else {
        const e = new Error(data.error.message);
        e.code = data.error.code;
        e.name = data.error.name;
        w.reject(e);
      }
    };
    this.worker.onerror = (event) => {
      const e = new Error('the replica worker failed: ' + (event.message || 'unknown error'));
      e.code = 18;
      e.name = 'internal';
      for (const w of this.waiting.values()) w.reject(e);
      this.waiting.clear();
    };
  }

  call(op, args) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, args });
    });
  }

  terminate() {
    this.worker.terminate();
  }
}

self.FieldsyncReplica = FieldsyncReplica;
