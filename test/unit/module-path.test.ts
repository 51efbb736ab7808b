import assert from 'node:assert/strict';
import { modulePathFromNodeName, modulePathFromWeightName, modulePathOf } from '../../src/core/onnx/module-path';

describe('module paths', () => {
  it('normalises exporter node names and weight names to the same dotted path', () => {
    assert.equal(modulePathFromNodeName('/vision_model/encoder/layers.0/self_attn/q_proj/MatMul'), 'vision_model.encoder.layers.0.self_attn.q_proj');
    assert.equal(modulePathFromNodeName('/language_model/lm_head/MatMul_1'), 'language_model.lm_head');
    assert.equal(modulePathFromWeightName('vision_model.encoder.layers.0.self_attn.q_proj.weight'), 'vision_model.encoder.layers.0.self_attn.q_proj');
    assert.equal(modulePathFromWeightName('bn1.running_var'), 'bn1');
    assert.equal(modulePathFromWeightName('onnx::MatMul_123'), undefined);
  });

  it('a Sequential/ModuleList child is named once: torch.onnx scopes it by its qualified name within its parent', () => {
    // torchvision MobileNetV3: features[1].block[0][0] is exported under '/features/features.1/block/block.0/block.0.0/Conv'.
    assert.equal(modulePathFromNodeName('/features/features.1/block/block.0/block.0.0/Conv'), 'features.1.block.0.0');
    assert.equal(modulePathFromNodeName('/encoder/layers/encoder_layer_0/mlp/mlp.0/MatMul'), 'encoder.layers.encoder_layer_0.mlp.0');
    // An attribute that merely shares a prefix is not a child's qualified name.
    assert.equal(modulePathFromNodeName('/model/layers.0/self_attn/q_proj/MatMul'), 'model.layers.0.self_attn.q_proj');
    assert.equal(modulePathFromNodeName('/layers/layers/layers.0/Conv'), 'layers.layers.0');
  });

  it('falls back to the consumer node when the weight was renamed', () => {
    const node = { name: '/language_model/model/layers.1/mlp/down_proj/MatMul', op_type: 'MatMul' };
    assert.equal(modulePathOf(node, 'onnx::MatMul_1042'), 'language_model.model.layers.1.mlp.down_proj');
    assert.equal(modulePathOf({ name: '/fc1/Gemm' }, 'fc1.weight'), 'fc1');
  });
});
