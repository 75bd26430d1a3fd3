/**
 * The OpenAI-compatible surface: POST /v1/chat/completions (messages with
 * text and `image_url` parts, streamed as OpenAI's SSE chunks ending in
 * `[DONE]`) and GET /v1/models. Images come only as data URLs: the server
 * never fetches a URL a request names.
 */
import { randomUUID } from 'crypto';

import { CHAT_DEFAULTS, ChatEvent, ChatOptions } from '../models/llm/chat';
import type { ChatMessage } from '../text/segments';
import type { ImageBytes } from '../io/image';
import type { RouteContext } from './context';
import { HttpError, badRequest } from './http_error';
import { sendJson, startEvents } from './http';
import { decodeBase64, readJsonObject } from './request_body';
import { decodeUpload, generationParams } from './image_routes';

const ROLES = new Set(['system', 'user', 'assistant']);

interface Conversation {
  messages: ChatMessage[];
  image?: ImageBytes;
}

/** OpenAI messages into the template's: text parts joined, the one image marked on its message. */
export function readConversation(raw: unknown): Conversation {
  if (!Array.isArray(raw) || raw.length === 0) throw badRequest('"messages" must be a non-empty array');
  if (raw.length > 256) throw badRequest('at most 256 messages');
  let image: ImageBytes | undefined;
  const messages = raw.map((m: unknown, i): ChatMessage => {
    const at = `messages[${i}]`;
    if (typeof m !== 'object' || m === null) throw badRequest(`${at} must be an object`);
    const { role, content } = m as { role?: unknown; content?: unknown };
    if (typeof role !== 'string' || !ROLES.has(role)) throw badRequest(`${at}.role must be system, user or assistant`);
    if (typeof content === 'string') return { role: role as ChatMessage['role'], content };
    if (!Array.isArray(content)) throw badRequest(`${at}.content must be a string or an array of parts`);
    const texts: string[] = [];
    let hasImage = false;
    content.forEach((p: unknown, j) => {
      const pat = `${at}.content[${j}]`;
      const part = (typeof p === 'object' && p !== null ? p : {}) as { type?: unknown; text?: unknown; image_url?: { url?: unknown } | string };
      if (part.type === 'text' && typeof part.text === 'string') texts.push(part.text);
      else if (part.type === 'image_url') {
        if (image) throw badRequest('one image per conversation (TinyLLaVA takes one)');
        if (role !== 'user') throw badRequest(`${pat}: images go in user messages`);
        const url = typeof part.image_url === 'string' ? part.image_url : part.image_url?.url;
        if (typeof url !== 'string' || !url.startsWith('data:')) throw badRequest(`${pat}: only data URLs are accepted (the server never fetches a URL)`);
        image = { name: `${pat}`, bytes: decodeBase64(url, `${pat}.image_url`) };
        hasImage = true;
      } else throw badRequest(`${pat} must be {"type": "text", "text"} or {"type": "image_url", "image_url": {"url"}}`);
    });
    return { role: role as ChatMessage['role'], content: texts.join('\n'), ...(hasImage ? { image: true } : {}) };
  });
  if (messages[messages.length - 1].role !== 'user') throw badRequest("the last message must be the user's");
  return { messages, image };
}

function stopStrings(stop: unknown): string[] | undefined {
  if (stop === undefined || stop === null) return undefined;
  const list = typeof stop === 'string' ? [stop] : stop;
  if (!Array.isArray(list) || list.length > 4 || !list.every((s) => typeof s === 'string' && s.length > 0 && s.length <= 200)) {
    throw badRequest('"stop" must be a string or up to 4 non-empty strings');
  }
  return list as string[];
}

export async function chatCompletionsRoute(c: RouteContext): Promise<void> {
  const { state } = c;
  const chat = state.models.chat;
  const body = await readJsonObject(c.req, state.limits.maxBodyBytes);
  if (!chat) throw new HttpError(404, 'model_not_found', 'no chat model is loaded: start tinyemo serve with --mllm DIR');
  if (body.n !== undefined && body.n !== 1) throw badRequest('"n" must be 1');
  const { messages, image } = readConversation(body.messages);
  if (image) await decodeUpload(state, image);
  const opts: ChatOptions = { ...generationParams(body, state.limits.maxTokens, CHAT_DEFAULTS.maxNewTokens), stopStrings: stopStrings(body.stop), signal: c.signal, image };
  const stream = body.stream === true;
  const usageInStream = stream && (body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
  const head = { id: `chatcmpl-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model: typeof body.model === 'string' ? body.model.slice(0, 200) : state.models.chatId! };
  await state.scheduler.run(async () => {
    const events = chat.converse(messages, opts);
    if (stream) await streamChunks(c, events, head, usageInStream);
    else {
      for await (const e of events) {
        if (e.type !== 'done') continue;
        state.metrics.tokens.inc(e.tokens);
        sendJson(c.res, 200, {
          ...head,
          object: 'chat.completion',
          choices: [{ index: 0, message: { role: 'assistant', content: e.text }, finish_reason: e.finishReason, logprobs: null }],
          usage: usageOf(e),
        });
      }
    }
  }, c.signal);
}

type Done = Extract<ChatEvent, { type: 'done' }>;
const usageOf = (e: Done) => ({ prompt_tokens: e.promptTokens, completion_tokens: e.tokens, total_tokens: e.promptTokens + e.tokens });

async function streamChunks(c: RouteContext, events: AsyncGenerator<ChatEvent>, head: { id: string; created: number; model: string }, withUsage: boolean): Promise<void> {
  const first = await events.next(); // a failure before any text is still an HTTP error
  const send = startEvents(c.res);
  const chunk = (delta: object, finish: string | null) => send({ ...head, object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }] });
  chunk({ role: 'assistant', content: '' }, null);
  const handle = (e: ChatEvent) => {
    if (e.type === 'text') return chunk({ content: e.text }, null);
    c.state.metrics.tokens.inc(e.tokens);
    chunk({}, e.finishReason);
    if (withUsage) send({ ...head, object: 'chat.completion.chunk', choices: [], usage: usageOf(e) });
  };
  if (!first.done) handle(first.value);
  for await (const e of events) handle(e);
  send('[DONE]');
  c.res.end();
}

export async function modelsRoute(c: RouteContext): Promise<void> {
  const created = Math.floor(Date.now() / 1000);
  const ids = c.state.models.chatId ? [c.state.models.chatId] : [];
  sendJson(c.res, 200, { object: 'list', data: ids.map((id) => ({ id, object: 'model', created, owned_by: 'tinyemo' })) });
}
