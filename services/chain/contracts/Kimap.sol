// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

import {KinoAccountProxy} from "./KinoAccountProxy.sol";

/// @title Kimap-compatible registry (kinode-ts).
/// @notice Same events, reads, label rules, errors and write path as Kimap
/// (identity-and-network.md §1.3, §1.4, §4.3): every name entry is an ERC-721
/// token (id = uint256(namehash)) with a token-bound account created with
/// CREATE2 (salt = namehash); `mint` is called by the parent's account, `note`
/// and `fact` by the entry's own account. No constructor state: install the
/// runtime code with anvil_setCode, then call `init` once.
contract Kimap {
    struct Entry {
        address tba;
        address gene;
        bytes data;
    }

    event Mint(bytes32 indexed parenthash, bytes32 indexed namehash, bytes indexed labelhash, bytes label);
    event Note(bytes32 indexed parenthash, bytes32 indexed namehash, bytes indexed labelhash, bytes label, bytes data);
    event Fact(bytes32 indexed parenthash, bytes32 indexed namehash, bytes indexed labelhash, bytes label, bytes data);
    event Gene(bytes32 indexed entry, address indexed gene);
    event Zero(address indexed zeroTba);
    event Transfer(address indexed from, address indexed to, uint256 indexed id);
    event Approval(address indexed owner, address indexed approved, uint256 indexed id);
    event ApprovalForAll(address indexed owner, address indexed operator, bool approved);

    error LabelTooShort();
    error LabelTooLong();
    error InvalidLabelCharacter();
    error NoteMustBeginWithTilde();
    error FactMustBeginWithBang();
    error NameAlreadyExists();
    error FactAlreadyExists();
    error EmptyFact();
    error GeneAlreadySet();
    error NotParent();
    error FailedToInitializeTBA();
    error AlreadyInitialized();
    error ERC721NonexistentToken(uint256 id);
    error ERC721InsufficientApproval(address operator, uint256 id);
    error ERC721IncorrectOwner(address sender, uint256 id, address owner);
    error ERC721InvalidReceiver(address receiver);

    mapping(bytes32 => Entry) internal map;
    mapping(address => bytes32) internal entryOfTba;
    mapping(uint256 => address) internal owners;
    mapping(address => uint256) internal balances;
    mapping(uint256 => address) internal approvals;
    mapping(address => mapping(address => bool)) internal operators;
    bool internal initialized;

    // ----- initialisation ---------------------------------------------------

    /// Creates the root entry (namehash 0) owned by `admin` with an account of
    /// `accountImpl`, emits Zero, then mints each of `zones` under the root,
    /// owned by `admin`, with a minter account `zoneImpl`.
    function init(address admin, address accountImpl, address zoneImpl, bytes[] calldata zones) external {
        if (initialized) revert AlreadyInitialized();
        initialized = true;
        address zeroTba = _mintEntry(admin, bytes32(0), accountImpl, false, "");
        emit Zero(zeroTba);
        for (uint256 i = 0; i < zones.length; i++) {
            _isValidLabel(zones[i], 0);
            bytes32 child = leaf(bytes32(0), zones[i]);
            emit Mint(bytes32(0), child, zones[i], zones[i]);
            _mintEntry(admin, child, zoneImpl, false, "");
        }
    }

    // ----- reads -------------------------------------------------------------

    function get(bytes32 namehash) external view returns (address tba, address owner, bytes memory data) {
        Entry storage entry = map[namehash];
        if (entry.tba == address(0)) return (address(0), address(0), entry.data);
        return (entry.tba, owners[uint256(namehash)], entry.data);
    }

    function tbaOf(bytes32 entry) external view returns (address) {
        return map[entry].tba;
    }

    function leaf(bytes32 parenthash, bytes calldata label) public pure returns (bytes32) {
        return keccak256(abi.encodePacked(parenthash, keccak256(label)));
    }

    // ----- writes ------------------------------------------------------------

    function mint(address to, bytes calldata label, bytes calldata initialization, address implementation)
        external
        returns (address tba)
    {
        _isValidLabel(label, 0);
        bytes32 parent = _callerEntry();
        bytes32 child = leaf(parent, label);
        bool setGene = false;
        if (map[parent].gene != address(0)) {
            implementation = map[parent].gene;
            setGene = true;
        }
        // Mint first: notes written by the initialization follow it in the logs.
        emit Mint(parent, child, label, label);
        tba = _mintEntry(to, child, implementation, setGene, initialization);
    }

    function note(bytes calldata label, bytes calldata data) external returns (bytes32 namehash) {
        if (label.length == 0) revert LabelTooShort();
        if (label[0] != 0x7E) revert NoteMustBeginWithTilde();
        _isValidLabel(label, 1);
        bytes32 parent = _callerEntry();
        namehash = leaf(parent, label);
        map[namehash].data = data;
        emit Note(parent, namehash, label, label, data);
    }

    function fact(bytes calldata label, bytes calldata data) external returns (bytes32 namehash) {
        if (label.length == 0) revert LabelTooShort();
        if (label[0] != 0x21) revert FactMustBeginWithBang();
        _isValidLabel(label, 1);
        bytes32 parent = _callerEntry();
        namehash = leaf(parent, label);
        if (map[namehash].data.length != 0) revert FactAlreadyExists();
        if (data.length == 0) revert EmptyFact();
        map[namehash].data = data;
        emit Fact(parent, namehash, label, label, data);
    }

    function gene(address implementation) external {
        bytes32 entry = _callerEntry();
        if (map[entry].gene != address(0)) revert GeneAlreadySet();
        map[entry].gene = implementation;
        emit Gene(entry, implementation);
    }

    // ----- ERC-721 (minimal) -------------------------------------------------

    function name() external pure returns (string memory) {
        return "Kimap";
    }

    function symbol() external pure returns (string memory) {
        return "KIMAP";
    }

    function supportsInterface(bytes4 id) external pure returns (bool) {
        return id == 0x01ffc9a7 || id == 0x80ac58cd || id == 0x5b5e139f;
    }

    function ownerOf(uint256 id) public view returns (address owner) {
        owner = owners[id];
        if (owner == address(0)) revert ERC721NonexistentToken(id);
    }

    function balanceOf(address owner) external view returns (uint256) {
        return balances[owner];
    }

    function getApproved(uint256 id) external view returns (address) {
        ownerOf(id);
        return approvals[id];
    }

    function isApprovedForAll(address owner, address operator) external view returns (bool) {
        return operators[owner][operator];
    }

    function approve(address to, uint256 id) external {
        address owner = ownerOf(id);
        if (msg.sender != owner && !operators[owner][msg.sender]) revert ERC721InsufficientApproval(msg.sender, id);
        approvals[id] = to;
        emit Approval(owner, to, id);
    }

    function setApprovalForAll(address operator, bool approved) external {
        operators[msg.sender][operator] = approved;
        emit ApprovalForAll(msg.sender, operator, approved);
    }

    function transferFrom(address from, address to, uint256 id) public {
        address owner = ownerOf(id);
        if (owner != from) revert ERC721IncorrectOwner(from, id, owner);
        if (msg.sender != owner && approvals[id] != msg.sender && !operators[owner][msg.sender]) {
            revert ERC721InsufficientApproval(msg.sender, id);
        }
        if (to == address(0)) revert ERC721InvalidReceiver(to);
        _transfer(from, to, id);
    }

    function safeTransferFrom(address from, address to, uint256 id) external {
        transferFrom(from, to, id);
    }

    function safeTransferFrom(address from, address to, uint256 id, bytes calldata) external {
        transferFrom(from, to, id);
    }

    // ----- internals ---------------------------------------------------------

    function _callerEntry() internal view returns (bytes32 entry) {
        entry = entryOfTba[msg.sender];
        if (map[entry].tba != msg.sender) revert NotParent();
    }

    function _isValidLabel(bytes calldata label, uint256 offset) internal pure {
        uint256 len = label.length;
        if (len <= offset) revert LabelTooShort();
        if (len >= 64) revert LabelTooLong();
        for (uint256 i = offset; i < len; i++) {
            bytes1 c = label[i];
            if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7A) || c == 0x2D)) revert InvalidLabelCharacter();
        }
    }

    function _mintEntry(address to, bytes32 namehash, address implementation, bool setGene, bytes memory initialization)
        internal
        returns (address tba)
    {
        if (map[namehash].tba != address(0)) revert NameAlreadyExists();
        if (to == address(0)) revert ERC721InvalidReceiver(to);
        tba = address(new KinoAccountProxy{salt: namehash}(namehash));
        map[namehash] = Entry(tba, setGene ? implementation : address(0), "");
        entryOfTba[tba] = namehash;
        // Kimap owns the token while the account initialises (so the
        // initialization may `execute` as its owner), then hands it over.
        _transfer(address(0), address(this), uint256(namehash));
        (bool ok,) = tba.call(abi.encodeCall(KinoAccountProxy.initialize, (implementation, initialization)));
        if (!ok) revert FailedToInitializeTBA();
        _transfer(address(this), to, uint256(namehash));
    }

    function _transfer(address from, address to, uint256 id) internal {
        if (from != address(0)) balances[from] -= 1;
        balances[to] += 1;
        owners[id] = to;
        delete approvals[id];
        emit Transfer(from, to, id);
    }
}
