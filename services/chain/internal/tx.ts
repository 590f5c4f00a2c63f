/**
 * A contract write that cannot hang and cannot be sent twice by a retry:
 * simulate (decodes a revert into `Reverted`), prepare, sign locally, send
 * the raw transaction (re-sending the same signed bytes is harmless), then
 * poll for the receipt by its hash until a deadline.
 * @internal
 */
import { Duration, Effect, Schedule } from "effect"
import {
  type Abi,
  type Hex,
  type LocalAccount,
  type PublicClient,
  type TransactionReceipt,
  encodeFunctionData,
  keccak256
} from "viem"
import { ChainUnavailable, Reverted } from "../ChainError.ts"
import { type RpcPolicy, rpc, rpcRead } from "./rpc.ts"

/** @internal */
export interface WriteCall {
  readonly op: string
  readonly abi: Abi
  readonly address: Hex
  readonly functionName: string
  readonly args: ReadonlyArray<unknown>
  readonly value?: bigint
}

/** @internal */
export interface TxContext {
  readonly url: string
  readonly client: PublicClient
  readonly account: LocalAccount
  readonly policy: RpcPolicy
  /** Deadline for the receipt. */
  readonly receiptTimeout: Duration.Input
}

const nonceProblem = (reason: string) => /nonce|replacement|underpriced/i.test(reason)

const waitReceipt = (ctx: TxContext, hash: Hex, op: string): Effect.Effect<TransactionReceipt, ChainUnavailable> =>
  rpcRead(ctx.url, `${op}: receipt`, ctx.policy, () =>
    ctx.client.getTransactionReceipt({ hash }).catch((e: unknown) => {
      if (e instanceof Error && e.name === "TransactionReceiptNotFoundError") return undefined
      throw e
    })).pipe(
      Effect.flatMap((r) => r === undefined ? Effect.fail("pending" as const) : Effect.succeed(r)),
      Effect.retry({ while: (e) => e === "pending", schedule: Schedule.spaced("100 millis") }),
      Effect.timeoutOrElse({
        duration: ctx.receiptTimeout,
        orElse: () => Effect.fail(new ChainUnavailable({ url: ctx.url, reason: `${op}: no receipt for ${hash}` }))
      }),
      Effect.catchIf((e): e is "pending" => e === "pending", () =>
        Effect.fail(new ChainUnavailable({ url: ctx.url, reason: `${op}: no receipt for ${hash}` })))
    )

const attempt = Effect.fnUntraced(function*(ctx: TxContext, call: WriteCall) {
  const data = encodeFunctionData({ abi: call.abi, functionName: call.functionName, args: call.args } as never)
  yield* rpc(ctx.url, `${call.op}: simulate`, ctx.policy, () =>
    ctx.client.simulateContract({
      abi: call.abi,
      address: call.address,
      functionName: call.functionName,
      args: call.args,
      account: ctx.account,
      ...(call.value === undefined ? {} : { value: call.value })
    } as never))
  const request = yield* rpc(ctx.url, `${call.op}: prepare`, ctx.policy, () =>
    ctx.client.prepareTransactionRequest({
      account: ctx.account,
      to: call.address,
      data,
      chain: ctx.client.chain,
      ...(call.value === undefined ? {} : { value: call.value })
    } as never))
  const signed = yield* Effect.tryPromise({
    try: () => ctx.account.signTransaction(request as never),
    catch: (cause) => new ChainUnavailable({ url: ctx.url, reason: `${call.op}: sign: ${String(cause)}` })
  })
  const hash = keccak256(signed)
  yield* rpc(
    ctx.url,
    `${call.op}: send`,
    ctx.policy,
    () => ctx.client.sendRawTransaction({ serializedTransaction: signed }),
    (e) => !nonceProblem(e.reason)
  ).pipe(
    // A retry of bytes the node already holds.
    Effect.catchIf((e) => e._tag === "ChainUnavailable" && /already known|already imported/i.test(e.reason), () => Effect.void),
    // "nonce too low" may mean an earlier, timed-out send of these very bytes
    // was mined: then go on to its receipt instead of sending another one.
    Effect.catchIf((e) => e._tag === "ChainUnavailable" && nonceProblem(e.reason), (e) =>
      rpcRead(ctx.url, `${call.op}: receipt`, ctx.policy, () =>
        ctx.client.getTransactionReceipt({ hash }).then(() => true, () => false)).pipe(
          Effect.flatMap((mined) => mined ? Effect.void : Effect.fail(e))
        ))
  )
  const receipt = yield* waitReceipt(ctx, hash, call.op)
  if (receipt.status !== "success") return yield* new Reverted({ operation: call.op, error: "reverted" })
  return receipt
})

/**
 * Sends `call` from `ctx.account`. A nonce clash (another process using the
 * same account at the same moment) re-prepares with a fresh nonce, up to 3
 * times.
 * @internal
 */
export const sendTx = (ctx: TxContext, call: WriteCall): Effect.Effect<TransactionReceipt, ChainUnavailable | Reverted> =>
  attempt(ctx, call).pipe(
    Effect.retry({
      while: (e: ChainUnavailable | Reverted) => e._tag === "ChainUnavailable" && nonceProblem(e.reason),
      schedule: Schedule.spaced("20 millis").pipe(Schedule.jittered),
      times: 10
    })
  )

const attemptValue = Effect.fnUntraced(function*(ctx: TxContext, to: Hex, value: bigint, op: string) {
  const request = yield* rpc(ctx.url, `${op}: prepare`, ctx.policy, () =>
    ctx.client.prepareTransactionRequest({ account: ctx.account, to, value, chain: ctx.client.chain } as never))
  const signed = yield* Effect.tryPromise({
    try: () => ctx.account.signTransaction(request as never),
    catch: (cause) => new ChainUnavailable({ url: ctx.url, reason: `${op}: sign: ${String(cause)}` })
  })
  yield* rpc(
    ctx.url,
    `${op}: send`,
    ctx.policy,
    () => ctx.client.sendRawTransaction({ serializedTransaction: signed }),
    (e) => !nonceProblem(e.reason)
  )
  return yield* waitReceipt(ctx, keccak256(signed), op)
})

/** A plain value transfer (used to mine one more block after a registration). @internal */
export const sendValue = (ctx: TxContext, to: Hex, value: bigint, op: string) =>
  attemptValue(ctx, to, value, op).pipe(
    Effect.retry({
      while: (e: ChainUnavailable | Reverted) => e._tag === "ChainUnavailable" && nonceProblem(e.reason),
      schedule: Schedule.spaced("20 millis").pipe(Schedule.jittered),
      times: 10
    })
  )
