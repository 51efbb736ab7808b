import assert from 'node:assert/strict';
import fs from 'node:fs';
import * as protobuf from 'protobufjs';

// Our schema (proto/onnx.proto) is transcribed from the ONNX IR spec. Where Debian's python3-onnx is
// installed, every message and field of its official onnx.proto must appear in ours with the same number,
// type and label: files written by either side then decode identically.
const OFFICIAL = '/usr/lib/python3/dist-packages/onnx/onnx.proto';
// Top-level enums no field uses: lists of IR versions and operator statuses whose newest entries move
// with every onnx release, so they are documentation rather than wire format.
const UNUSED_ON_THE_WIRE = new Set(['.onnx.Version', '.onnx.OperatorStatus']);

describe('ONNX schema', () => {
  it('matches the official onnx.proto field for field (where Debian python3-onnx provides it)', function () {
    if (!fs.existsSync(OFFICIAL)) this.skip();
    const ours = protobuf.loadSync('proto/onnx.proto').root;
    const theirs = protobuf.loadSync(OFFICIAL).root;
    let checked = 0;
    const visit = (ns: protobuf.NamespaceBase) => {
      for (const obj of ns.nestedArray) {
        if (obj instanceof protobuf.Type) {
          const mine = ours.lookupType(obj.fullName);
          for (const f of obj.fieldsArray) {
            const m = mine.fields[f.name];
            assert.ok(m, `${obj.fullName}.${f.name} is missing from our schema`);
            assert.equal(m.id, f.id, `${obj.fullName}.${f.name} number`);
            assert.equal(m.type, f.type, `${obj.fullName}.${f.name} type`);
            assert.equal(m.repeated, f.repeated, `${obj.fullName}.${f.name} label`);
            checked++;
          }
        } else if (obj instanceof protobuf.Enum && !UNUSED_ON_THE_WIRE.has(obj.fullName)) {
          const mine = ours.lookupEnum(obj.fullName);
          for (const [k, v] of Object.entries(obj.values)) assert.equal(mine.values[k], v, `${obj.fullName}.${k}`);
        }
        if (obj instanceof protobuf.Namespace) visit(obj);
      }
    };
    visit(theirs);
    assert.ok(checked > 80, `only ${checked} fields compared`);
  });
});
