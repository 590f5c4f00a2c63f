/**
 * The JSON-RPC methods a `Request` may call, exactly Kinode's `valid_method` list; any
 * other is answered `{"Err":{"InvalidMethod":"<method>"}}` without reaching a provider.
 */
export const ALLOWED_METHODS: ReadonlySet<string> = new Set([
  "eth_getBalance",
  "eth_sendRawTransaction",
  "eth_call",
  "eth_chainId",
  "eth_getTransactionReceipt",
  "eth_getTransactionCount",
  "eth_estimateGas",
  "eth_blockNumber",
  "eth_getBlockByHash",
  "eth_getBlockByNumber",
  "eth_getTransactionByHash",
  "eth_getCode",
  "eth_getStorageAt",
  "eth_gasPrice",
  "eth_accounts",
  "eth_hashrate",
  "eth_getLogs",
  "eth_subscribe",
  "eth_unsubscribe"
])

export const isAllowed = (method: string): boolean => ALLOWED_METHODS.has(method)
