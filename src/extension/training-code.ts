import * as vscode from 'vscode';

/**
 * The workspace Python file that defines the model's modules: the one whose `self.<name> =` assignments
 * cover most of the layer names (the last segment of each module path). Undefined when none matches.
 */
export async function findTrainingCode(layerNames: string[]): Promise<vscode.Uri | undefined> {
  const leaves = new Set(layerNames.map((n) => n.split('.').pop()!).filter((n) => !/^\d+$/.test(n)));
  if (!leaves.size) return undefined;
  const files = await vscode.workspace.findFiles('**/*.py', '{**/node_modules/**,**/.venv/**,**/venv/**,**/site-packages/**}', 300);
  let best: { uri: vscode.Uri; score: number } | undefined;
  for (const uri of files) {
    let text: string;
    try {
      text = new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
    } catch {
      continue;
    }
    if (!/nn\.Module/.test(text)) continue;
    const defined = new Set([...text.matchAll(/self\.([A-Za-z_]\w*)\s*=/g)].map((m) => m[1]));
    const score = [...leaves].filter((l) => defined.has(l)).length;
    if (score > 0 && (!best || score > best.score)) best = { uri, score };
  }
  return best?.uri;
}

/**
 * Where a results panel goes: beside the training code. The code opens in the first column (unless it is
 * already visible) and the panel takes the second.
 */
export async function columnBesideCode(layerNames: string[]): Promise<vscode.ViewColumn> {
  const code = await findTrainingCode(layerNames);
  if (code) {
    const shown = vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === code.toString());
    if (!shown) await vscode.window.showTextDocument(code, { viewColumn: vscode.ViewColumn.One, preview: false, preserveFocus: true });
    const col = shown?.viewColumn ?? vscode.ViewColumn.One;
    return col === vscode.ViewColumn.One ? vscode.ViewColumn.Two : vscode.ViewColumn.One;
  }
  return vscode.window.activeTextEditor ? vscode.ViewColumn.Beside : vscode.ViewColumn.Active;
}
