import assert from 'node:assert/strict';
import { FIXTURES } from '../../src/core/fixtures';
import { onnx, type ModelProto } from '../../src/core/onnx/proto';
import { interleaveCopies, keepOutputs, mergeSideBySide, reduceToNsr } from '../../src/core/sensitivity/merge';
import { executedOrder, feedsFor, runOrt } from '../helpers/util';

/**
 * A merged graph as local sensitivity builds it: the float transformer, and beside it a copy of each MLP's
 * second Linear that reads the float value where the base computes it and is compared with the base's own
 * output. The copy's weight is scaled, so each comparison has a known, non-zero error.
 */
function merged(): { model: ModelProto; baseCount: number; sums: ReturnType<typeof reduceToNsr> } {
  const base = FIXTURES.transformer.build();
  const g = base.graph!;
  const parts: Array<{ prefix: string; model: ModelProto }> = [];
  const compared: Array<{ reference: string; copies: string[] }> = [];
  g.node!.filter((n) => n.op_type === 'MatMul' && /fc2/.test(n.name ?? '')).forEach((n, k) => {
    const w = g.initializer!.find((t) => t.name === n.input![1])!;
    const f = new Float32Array(new Uint8Array(w.raw_data!).slice().buffer).map((v) => v * 1.01);
    const part = onnx.ModelProto.create({
      ir_version: base.ir_version, opset_import: base.opset_import,
      graph: { name: 'copy', node: [{ ...n, name: 'copy', input: [n.input![0], 'w'] }], initializer: [{ ...w, name: 'w', raw_data: new Uint8Array(f.buffer) }],
        input: [{ name: n.input![0] }], output: [{ name: n.output![0] }] },
    });
    parts.push({ prefix: `${k}q`, model: part });
    compared.push({ reference: n.output![0], copies: [`${k}q/${n.output![0]}`] });
  });
  const model = mergeSideBySide(base, parts);
  return { model, baseCount: g.node!.length, sums: reduceToNsr(model, compared) };
}

describe('local sensitivity: the merged graph', () => {
  it('interleaved, each copy and its reduction follow their inputs at once; the order stays valid and the sums do not change', async () => {
    const appended = merged();
    const interleaved = merged();
    interleaveCopies(interleaved.model, interleaved.baseCount);
    const nodes = interleaved.model.graph!.node!;
    assert.equal(nodes.length, appended.model.graph!.node!.length);
    // Topological: every input is a graph input, an initializer, or made by an earlier node.
    const made = new Set<string>(['', ...interleaved.model.graph!.input!.map((i) => i.name!), ...interleaved.model.graph!.initializer!.map((t) => t.name!)]);
    for (const n of nodes) {
      for (const i of n.input ?? []) assert.ok(made.has(i), `${n.name} reads ${i} before it is made`);
      for (const o of n.output ?? []) made.add(o);
    }
    // onnxruntime, at full optimisation, reduces the first block's copy before it runs the second block:
    // appended, it ran the float graph first and kept every activation a copy reads alive to the end.
    const feeds = feedsFor(interleaved.model.graph!);
    const enc = (m: ModelProto) => onnx.ModelProto.encode(m).finish();
    const firstReduction = interleaved.sums[0].err[0].replace(/\/sum$/, '/ReduceSumSquare');
    const where = (order: string[]) => ({ sum: order.indexOf(firstReduction), next: order.findIndex((n) => n.startsWith('/layers.1/')), of: order.length });
    const [a0, i0] = [where(await executedOrder(enc(appended.model), feeds)), where(await executedOrder(enc(interleaved.model), feeds))];
    assert.ok(a0.sum > a0.next && a0.next > 0, `premise: appended, the first reduction ran at ${a0.sum} of ${a0.of}, block 1 from ${a0.next}`);
    assert.ok(i0.sum >= 0 && i0.sum < i0.next, `interleaved: the first reduction ran at ${i0.sum} of ${i0.of}, block 1 from ${i0.next}`);
    const [a, b] = [await runOrt(enc(appended.model), feeds), await runOrt(enc(interleaved.model), feeds)];
    for (const s of appended.sums) {
      for (const name of [s.sig, ...s.err]) {
        assert.ok(a[name][0] > 0, `${name} is ${a[name][0]}`);
        assert.equal(b[name][0], a[name][0], name);
      }
    }
  });

  it('keeping some outputs drops the nodes and weights only the others need; the kept sums do not change', async () => {
    const all = merged();
    interleaveCopies(all.model, all.baseCount);
    // The copies' weights listed among the graph's inputs too, as IR 3 exports list every initializer.
    const g = all.model.graph!;
    g.input = [...g.input!, ...g.initializer!.filter((t) => /^\dq\//.test(t.name ?? '')).map((t) => ({ name: t.name, type: { tensor_type: { elem_type: t.data_type, shape: { dim: t.dims!.map((d) => ({ dim_value: d })) } } } }))];
    const [first, ...others] = all.sums;
    const kept = keepOutputs(all.model, new Set([first.sig, ...first.err]));
    assert.deepEqual(kept.graph!.input!.map((i) => i.name).filter((n) => /^\dq\//.test(n ?? '')), ['0q/w'], 'the dropped weights\' inputs go too');
    const names = new Set(kept.graph!.node!.map((n) => n.name));
    assert.deepEqual(kept.graph!.output!.map((o) => o.name), [first.sig, ...first.err]);
    assert.ok(names.has('0q/copy') && !names.has('1q/copy'), 'the other copies are gone');
    assert.ok(!kept.graph!.initializer!.some((t) => t.name === '1q/w') && kept.graph!.initializer!.some((t) => t.name === '0q/w'), 'and their weights');
    // The float model only as far as the first comparison needs it (the second block's MLP is not read).
    assert.ok(![...names].some((n) => n?.startsWith('/layers.1/mlp/')), [...names].join(' '));
    const enc = (m: ModelProto) => onnx.ModelProto.encode(m).finish();
    const feeds = feedsFor(all.model.graph!);
    const [a, b] = [await runOrt(enc(all.model), feeds), await runOrt(enc(kept), feeds)];
    // (To float rounding: onnxruntime plans the smaller graph's kernels otherwise.)
    for (const name of [first.sig, ...first.err]) assert.ok(a[name][0] > 0 && Math.abs(b[name][0] - a[name][0]) <= 1e-5 * a[name][0], `${name}: ${b[name][0]} against ${a[name][0]}`);
    assert.ok(others.length > 0 && others.every((s) => !(s.err[0] in b)));
  });

  it('keeps no view into a part\'s decoded buffer: string attributes, Constant tensors and initializers are copied out', () => {
    // A part decoded from bytes, as applyQuantization's copies are: its bytes fields are views into one buffer.
    const base = FIXTURES.transformer.build();
    const part = onnx.ModelProto.create({
      ir_version: base.ir_version, opset_import: base.opset_import,
      graph: {
        name: 'copy', input: [{ name: 'x' }], output: [{ name: 'y' }], initializer: [{ name: 'w', data_type: 1, dims: [4], raw_data: new Uint8Array(16).fill(1) }],
        node: [
          { name: 'c', op_type: 'Constant', output: ['k'], attribute: [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: { data_type: 1, dims: [4], raw_data: new Uint8Array(16).fill(2) } }] },
          { name: 'p', op_type: 'Pad', input: ['x', 'k'], output: ['y'], attribute: [{ name: 'mode', type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode('reflect') }] },
        ],
      },
    });
    const bytes = onnx.ModelProto.encode(part).finish();
    const decoded = onnx.ModelProto.decode(new Uint8Array(bytes));
    const buffer = decoded.graph!.node![1].attribute![0].s!.buffer;
    assert.equal(decoded.graph!.node![0].attribute![0].t!.raw_data!.buffer, buffer, 'the decoded part shares one buffer (the premise)');
    const g = mergeSideBySide(base, [{ prefix: '0q', model: decoded }]).graph!;
    const pad = g.node!.find((n) => n.name === '0q/p')!, constant = g.node!.find((n) => n.name === '0q/c')!;
    assert.notEqual(pad.attribute![0].s!.buffer, buffer);
    assert.equal(new TextDecoder().decode(pad.attribute![0].s!), 'reflect');
    assert.notEqual(constant.attribute![0].t!.raw_data!.buffer, buffer);
    assert.deepEqual([...constant.attribute![0].t!.raw_data!], new Array(16).fill(2));
    assert.notEqual(g.initializer!.find((t) => t.name === '0q/w')!.raw_data!.buffer, buffer);
  });
  // Where a layer's error joins the residual stream (see RegionJoin), Σ(ŷ − y)² at the join's input equals
  // Σ at its output (the stream cancels); the signal is the output's. Local sensitivity measures there, so
  // the copy needs neither the Add nor the stream.
  it('an error measured before the residual Add, with the Add\'s output as signal, gives the sums measured after it', async () => {
    const base = FIXTURES.transformer.build();
    const g = base.graph!;
    const consts = new Set(g.initializer!.map((t) => t.name!));
    const fc2 = g.node!.find((n) => n.op_type === 'MatMul' && /layers\.0\/mlp\/fc2/.test(n.name ?? ''))!;
    // Through the bias Add (a constant operand) to the Add that joins the stream.
    const chain = [fc2];
    for (let at = fc2.output![0]; ;) {
      const next = g.node!.find((n) => n.op_type === 'Add' && n.input!.includes(at))!;
      chain.push(next);
      if (next.input!.every((x) => x === at || !consts.has(x)) && next.input!.some((x) => x !== at)) break;
      at = next.output![0];
    }
    const join = chain[chain.length - 1];
    const before = join.input!.find((x) => x === chain[chain.length - 2].output![0])!;
    const w = g.initializer!.find((t) => t.name === fc2.input![1])!;
    const f = new Float32Array(new Uint8Array(w.raw_data!).slice().buffer).map((v) => v * 1.01);
    const part = (nodes: typeof chain, out: string) => onnx.ModelProto.create({
      ir_version: base.ir_version, opset_import: base.opset_import,
      graph: {
        name: 'copy', node: nodes.map((n) => (n === fc2 ? { ...n, input: [n.input![0], 'w'] } : n)), initializer: [{ ...w, name: 'w', raw_data: new Uint8Array(f.buffer) }],
        input: [...new Set(nodes.flatMap((n) => n.input!).filter((x) => x !== fc2.input![1] && !nodes.some((m) => m.output!.includes(x))))].map((name) => ({ name })), output: [{ name: out }],
      },
    });
    const model = mergeSideBySide(base, [{ prefix: 'after', model: part(chain, join.output![0]) }, { prefix: 'before', model: part(chain.slice(0, -1), before) }]);
    const [after, atJoin] = reduceToNsr(model, [{ reference: join.output![0], copies: [`after/${join.output![0]}`] }, { reference: before, copies: [`before/${before}`], signal: join.output![0] }]);
    assert.equal(atJoin.sig, after.sig, 'one signal sum, the Add output\'s');
    const r = await runOrt(onnx.ModelProto.encode(model).finish(), feedsFor(g));
    assert.ok(r[after.err[0]][0] > 0, 'a non-zero error');
    assert.ok(Math.abs(r[atJoin.err[0]][0] / r[after.err[0]][0] - 1) < 1e-3, `${r[atJoin.err[0]][0]} vs ${r[after.err[0]][0]}`);
  });
});
