// Descriptors of the test chips computed by face-api.js itself (its FaceRecognitionNet on
// TF.js's CPU backend), to check that ml/identity/faceapi_resnet.py is an exact port.
// Usage (see README.md here): node faceapi_reference.cjs CHIPS_RAW MODEL_DIR OUT_NPY
//   CHIPS_RAW: the chips as uint8 RGB, N x 150 x 150 x 3, in README order
//   MODEL_DIR: package/model of the npm tarball @vladmandic/face-api@1.7.15
const fs = require('fs');
const path = require('path');
const faceapi = require('@vladmandic/face-api/dist/face-api.node.js');

function npyFloat32(shape, data) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre.writeUInt8(1, 6);
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(data.buffer)]);
}

async function main([rawPath, modelDir, outPath]) {
  const { tf } = faceapi;
  await tf.setBackend('cpu');
  const name = 'face_recognition_model';
  const manifest = JSON.parse(fs.readFileSync(path.join(modelDir, `${name}-weights_manifest.json`)));
  const bin = fs.readFileSync(path.join(modelDir, `${name}.bin`));
  const buf = bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength);
  const net = new faceapi.FaceRecognitionNet();
  net.loadFromWeightMap(tf.io.decodeWeights(buf, manifest[0].weights));
  const raw = fs.readFileSync(rawPath);
  const size = 150 * 150 * 3;
  const n = raw.length / size;
  const out = new Float32Array(n * 128);
  for (let i = 0; i < n; i++) {
    const pixels = new Uint8Array(raw.buffer, raw.byteOffset + i * size, size);
    const chip = tf.tensor3d(pixels, [150, 150, 3], 'int32');
    out.set(await net.computeFaceDescriptor(chip), i * 128);
    chip.dispose();
  }
  fs.writeFileSync(outPath, npyFloat32([n, 128], out));
  console.log(`wrote ${n} descriptors to ${outPath} (tfjs ${tf.version_core})`);
}

main(process.argv.slice(2));
