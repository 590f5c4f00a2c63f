/** `help [command]`: every command and key, or one command. */
import type { Address } from "kinode:process/standard@1.0.0"

const b = (s: string) => `\x1b[1m${s}\x1b[0m`

const HELP: ReadonlyArray<readonly [string, string]> = [
  ["alias", `${b("alias")} <shorthand> <process-id>: create an alias for a script; ${b("alias")} <shorthand> removes it.\n    - Example: ${b("alias e echo:terminal:sys")}\n    - note: all of these listed commands are just default aliases for terminal scripts.`],
  ["cat", `${b("cat")} <vfs-file-path>: print the contents of a file in the terminal.\n    - Example: ${b("cat /terminal:sys/pkg/scripts.json")}`],
  ["echo", `${b("echo")} <text>: print text to the terminal.\n    - Example: ${b("echo foo")}`],
  ["hi", `${b("hi")} <name> <string>: send a text message to another node's command line.\n    - Example: ${b("hi mothu.kino hello world")}`],
  ["kfetch", `${b("kfetch")}: print system information a la neofetch. No arguments.`],
  ["kill", `${b("kill")} <process-id>: terminate a running process. This will bypass any restart behavior; use judiciously.\n    - Example: ${b("kill chess:chess:sys")}`],
  ["kns", `${b("kns")} <name>: a node's record through the KNS indexer: key, addresses or routers.\n    - Example: ${b("kns alice.os")}`],
  ["m", `${b("m")} <address> '<json>': send an inter-process message. <address> is formatted as <node>@<process-id>. <process-id> is formatted as <process-name>:<package-name>:<publisher-node>. JSON containing spaces must be wrapped in single-quotes (${b("''")}).\n    - Example: ${b("m our@eth:distro:sys \"SetPublic\" -a 5")}\n    - the '-a' flag (anywhere on the line) is used to expect a response with a given timeout (a blob in the response is summed up on a line of its own)\n    - ${b("-b")} <vfs-path> (or ${b("--blob")}, anywhere on the line) attaches that file as the request's blob, its MIME type from the file's extension; ${b("--blob-text")} '<text>' attaches text\n    - Example: ${b("m our@kernel:distro:sys '{\"InitializeProcess\": {...}}' -b /pkg:publisher/pkg/app.wasm -a 5")}\n    - ${b("our")} will always be interpolated by the system as your node's name`],
  ["net-diagnostics", `${b("net-diagnostics")}: print some useful networking diagnostic data.`],
  ["peer", `${b("peer")} <name>: print the peer's PKI info, if it exists.`],
  ["peers", `${b("peers")}: print the peers the node currently hold connections with.`],
  ["top", `${b("top")} <process-id>: display kernel debugging info about a process, with its capabilities. Leave the process ID blank to list all processes (${b("-c")} adds their capabilities) and get the total number of running processes.\n    - Example: ${b("top net:distro:sys")}\n    - Example: ${b("top")}`]
]

const KEYS = [
  `${b("CTRL+C")} or ${b("CTRL+D")} to gracefully shutdown node`,
  `${b("CTRL+V")} (or the line ${b("v <0-3>")}) to set the verbosity (0-3, 0 is default and lowest verbosity)`,
  `${b("UpArrow")}/${b("DownArrow")} to move up and down through command history`
]

/** Lines the node answers itself (kinode-ts's line reader), never sent to the terminal app. */
const NODE = [
  `${b("v")} <0-3>: the verbosity.`,
  `${b("install")} <zip> [--yes] [--id pkg:pub], ${b("y")} / ${b("n")}: install a package from a zip on this machine, after showing the capabilities it asks for.`,
  `${b("uninstall")} <package:publisher>, ${b("packages")}: remove a package; list the installed ones.`
]

export const help = (_our: Address, args: string): string => {
  const topic = args.trim()
  if (topic === "") {
    return [
      "",
      "====================",
      "Kinode Terminal Help",
      "====================",
      ...HELP.map(([, text]) => `\n${text}`),
      "",
      ...KEYS.map((k) => `\n${k}`),
      "",
      "\nThe node itself answers these lines:",
      ...NODE.map((k) => `    ${k}`),
      "\nAny other <process-id> of a script runs it: <name>:<package>:<publisher> <arguments>.",
      "============================================================"
    ].join("\n")
  }
  const found = HELP.find(([name]) => name === topic)
  return found === undefined ? `No help found for command ${b(topic)}` : `\n${found[1]}`
}
