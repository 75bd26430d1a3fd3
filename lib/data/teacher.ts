/**
 * A teacher model behind any OpenAI-compatible chat-completions endpoint
 * (vLLM, llama.cpp's server, Ollama, hosted APIs): one user message with the
 * prompt and the image as a base64 data URL. Errors are classified so the
 * runner knows what to retry: 429, 5xx, timeouts and dropped connections are
 * transient; other 4xx are not.
 */
import * as http from 'http';
import * as https from 'https';

import { TinyEmoError } from '../errors';

/** Seconds a teacher request may take unless told otherwise. */
export const TEACHER_TIMEOUT_S = 120;

export interface TeacherConfig {
  /** Base URL, e.g. http://127.0.0.1:8000/v1 (".../chat/completions" is appended). */
  url: string;
  model: string;
  apiKey?: string;
  /** Per request (default 120 s). */
  timeoutMs?: number;
  temperature?: number;
  maxTokens?: number;
}

export class TeacherError extends TinyEmoError {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
    /** Seconds the server asked to wait (Retry-After). */
    readonly retryAfter?: number,
  ) {
    super('NETWORK', message);
  }
}

export function mimeOf(file: string): string {
  const ext = file.toLowerCase().split('.').pop();
  return ext === 'png' ? 'image/png' : ext === 'webp' ? 'image/webp' : ext === 'gif' ? 'image/gif' : 'image/jpeg';
}

/** The chat-completions URL of a base URL (checked: http or https). */
export function teacherEndpoint(base: string): URL {
  let u: URL;
  try {
    u = new URL(base);
  } catch {
    throw new TinyEmoError('INVALID_ARGUMENT', `--teacher "${base}" is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TinyEmoError('INVALID_ARGUMENT', `--teacher must be http(s), not ${u.protocol}`);
  if (!u.pathname.endsWith('/chat/completions')) u.pathname = `${u.pathname.replace(/\/+$/, '')}/chat/completions`;
  return u;
}

/** Asks the teacher about one image; resolves with the answer text. */
export async function askTeacher(cfg: TeacherConfig, prompt: string, image: { bytes: Uint8Array; mime: string }, signal?: AbortSignal): Promise<string> {
  const url = teacherEndpoint(cfg.url);
  const body = JSON.stringify({
    model: cfg.model,
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: prompt },
          { type: 'image_url', image_url: { url: `data:${image.mime};base64,${Buffer.from(image.bytes).toString('base64')}` } },
        ],
      },
    ],
    temperature: cfg.temperature ?? 0.7,
    max_tokens: cfg.maxTokens ?? 512,
  });
  const lib = url.protocol === 'https:' ? https : http;
  const timeout = cfg.timeoutMs ?? TEACHER_TIMEOUT_S * 1000;
  const { status, text, retryAfter } = await new Promise<{ status: number; text: string; retryAfter?: number }>((resolve, reject) => {
    const req = lib.request(
      url,
      {
        method: 'POST',
        signal,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          ...(cfg.apiKey ? { authorization: `Bearer ${cfg.apiKey}` } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let n = 0;
        res.on('data', (c: Buffer) => {
          n += c.length;
          if (n > 8 << 20) {
            res.destroy();
            reject(new TeacherError('the teacher sent more than 8 MB', false, res.statusCode));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          const ra = Number(res.headers['retry-after']);
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), retryAfter: Number.isFinite(ra) ? ra : undefined });
        });
        res.on('error', (e) => reject(new TeacherError(`the teacher's reply broke off (${e.message})`, true)));
      },
    );
    req.setTimeout(timeout, () => req.destroy(new TeacherError(`no answer within ${timeout / 1000} s`, true)));
    req.on('error', (e) => {
      if (e instanceof TeacherError) reject(e);
      else if (signal?.aborted) reject(new TinyEmoError('CANCELLED', 'cancelled'));
      else reject(new TeacherError(`could not reach the teacher at ${url.origin} (${e.message})`, true));
    });
    req.end(body);
  });
  if (status === 429 || status >= 500) throw new TeacherError(`the teacher answered ${status}`, true, status, retryAfter);
  if (status !== 200) throw new TeacherError(`the teacher answered ${status}: ${text.slice(0, 200)}`, false, status);
  let reply: unknown;
  try {
    reply = JSON.parse(text);
  } catch {
    throw new TeacherError('the teacher sent something that is not JSON', true, status);
  }
  const content = (reply as { choices?: Array<{ message?: { content?: unknown } }> }).choices?.[0]?.message?.content;
  if (typeof content === 'string') return content;
  // Some servers return content as a list of parts.
  if (Array.isArray(content)) return content.map((p: { text?: unknown }) => (typeof p.text === 'string' ? p.text : '')).join('');
  throw new TeacherError('the reply has no choices[0].message.content', true, status);
}
