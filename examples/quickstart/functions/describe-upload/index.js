// Runs for each upload to `photos`: reads the S3 event exactly as Lambda delivers it and writes
// a description of the upload to the `derived` bucket, signing the PUT with the credentials eddy
// gives the function (AWS Signature V4 in a few lines, so the example needs no packages; the
// AWS SDK for JavaScript works the same way, reading AWS_ENDPOINT_URL_S3).
const crypto = require('crypto');
const http = require('http');

const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex');
const hmac = (key, data) => crypto.createHmac('sha256', key).update(data).digest();
const encode = (part) => encodeURIComponent(part).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());

function putObject(bucket, key, body, extraHeaders) {
  const endpoint = new URL(process.env.AWS_ENDPOINT_URL_S3);
  const date = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = date.slice(0, 8);
  const region = process.env.AWS_REGION;
  const path = `/${bucket}/${key.split('/').map(encode).join('/')}`;
  const headers = { host: endpoint.host, 'x-amz-content-sha256': sha256(body), 'x-amz-date': date };
  const names = Object.keys(headers).sort();
  const canonical = ['PUT', path, '', names.map((n) => `${n}:${headers[n]}\n`).join(''), names.join(';'), headers['x-amz-content-sha256']].join('\n');
  const scope = `${day}/${region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', date, scope, sha256(canonical)].join('\n');
  let signingKey = hmac(`AWS4${process.env.AWS_SECRET_ACCESS_KEY}`, day);
  for (const part of [region, 's3', 'aws4_request']) signingKey = hmac(signingKey, part);
  const signature = crypto.createHmac('sha256', signingKey).update(toSign).digest('hex');
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${process.env.AWS_ACCESS_KEY_ID}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
  return new Promise((resolve, reject) => {
    const request = http.request({ host: endpoint.hostname, port: endpoint.port, method: 'PUT', path, headers: { ...headers, ...extraHeaders, 'content-length': Buffer.byteLength(body) } }, (response) => {
      response.resume();
      response.on('end', () => (response.statusCode === 200 ? resolve() : reject(new Error(`PUT ${path}: ${response.statusCode}`))));
    });
    request.on('error', reject);
    request.end(body);
  });
}

exports.handler = async (event, context) => {
  for (const record of event.Records) {
    const key = decodeURIComponent(record.s3.object.key.replace(/\+/g, ' '));
    const description = { bucket: record.s3.bucket.name, key, size: record.s3.object.size, etag: record.s3.object.eTag, seen: record.eventTime };
    console.log(`new photo: ${key} (${record.s3.object.size} bytes)`);
    // The lineage headers let eddy trace this write to the upload (and stop loops).
    await putObject('derived', `${key}.json`, JSON.stringify(description), {
      'x-eddy-cause-event': context.eddy.eventId || '',
      'x-eddy-hops': String(context.eddy.hops),
    });
  }
  return { described: event.Records.length };
};
