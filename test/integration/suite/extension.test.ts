import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';

const EXTENSION_ID = 'quantlens.quantlens';
/** The commands users rely on; the test fails when one is dropped from the manifest or not registered. */
const EXPECTED_COMMANDS = ['quantlens.quantizeModel', 'quantlens.runPruningSweep', 'quantlens.inspectModel', 'quantlens.showOutput'];

async function poll<T>(what: string, probe: () => T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('QuantLens in a real VS Code extension host', () => {
  const ext = () => vscode.extensions.getExtension(EXTENSION_ID)!;

  it('is installed, not active before use (lazy activation), then activates', async () => {
    assert.ok(ext(), `${EXTENSION_ID} not found`);
    const pkg = ext().packageJSON;
    assert.ok(!(pkg.activationEvents ?? []).includes('*'), 'activation must stay lazy');
    await ext().activate();
    assert.equal(ext().isActive, true);
  });

  it('registers every contributed command, and the ones users rely on exist', async () => {
    const contributed: string[] = ext().packageJSON.contributes.commands.map((c: { command: string }) => c.command);
    const registered = new Set(await vscode.commands.getCommands(true));
    for (const c of EXPECTED_COMMANDS) assert.ok(contributed.includes(c), `${c} missing from package.json`);
    for (const c of contributed) assert.ok(registered.has(c), `${c} is contributed but not registered`);
    for (const c of ext().packageJSON.contributes.commands) assert.equal(c.category, 'QuantLens');
  });

  it('offers "Quantize model" in the explorer context menu for .onnx files only', () => {
    const entries = ext().packageJSON.contributes.menus['explorer/context'] as Array<{ command: string; when: string }>;
    const q = entries.find((e) => e.command === 'quantlens.quantizeModel');
    assert.ok(q, 'no explorer entry for Quantize model');
    assert.equal(q.when, 'resourceExtname == .onnx');
  });

  it('declares its settings with defaults', () => {
    const cfg = vscode.workspace.getConfiguration('quantlens');
    assert.equal(cfg.get('device'), 'auto');
    assert.equal(cfg.get('defaultBits'), 8);
  });

  it('inspects a real model through the engine process and opens the summary panel', async () => {
    const folder = vscode.workspace.workspaceFolders![0].uri.fsPath;
    const model = path.join(folder, 'tiny-vlm.onnx');
    assert.ok(fs.existsSync(model), 'the harness puts a fixture model in the workspace');
    const summary = (await vscode.commands.executeCommand('quantlens.inspectModel', vscode.Uri.file(model))) as { parameters: number; inputs: Array<{ name: string }>; opset: number };
    assert.ok(summary, 'inspect returned nothing');
    assert.equal(summary.opset, 17);
    assert.ok(summary.parameters > 100_000);
    assert.deepEqual(summary.inputs.map((i) => i.name), ['pixel_values', 'input_ids']);
    await poll('the summary webview tab', () => vscode.window.tabGroups.all.flatMap((g) => g.tabs).find((t) => t.input instanceof vscode.TabInputWebview && t.label === 'QuantLens: tiny-vlm.onnx'));
  });

  it('reports a broken model as an error without breaking the extension', async () => {
    const folder = vscode.workspace.workspaceFolders![0].uri.fsPath;
    const bad = path.join(folder, 'broken.onnx');
    fs.writeFileSync(bad, 'not a model');
    const r = await vscode.commands.executeCommand('quantlens.inspectModel', vscode.Uri.file(bad));
    assert.equal(r, undefined);
    const ok = (await vscode.commands.executeCommand('quantlens.inspectModel', vscode.Uri.file(path.join(folder, 'tiny-vlm.onnx')))) as { opset: number };
    assert.equal(ok.opset, 17);
  });

  it('says plainly that quantization is not implemented yet', async () => {
    assert.deepEqual(await vscode.commands.executeCommand('quantlens.quantizeModel'), { implemented: false });
  });
});
