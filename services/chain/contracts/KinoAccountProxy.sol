// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

/// @title Token-bound account proxy of one Kimap entry (kinode-ts).
/// @notice Created by Kimap with CREATE2 (salt = the entry's namehash). The
/// constructor records Kimap (the deployer) and the entry; Kimap then calls
/// `initialize` once with the implementation and an initialization call, which
/// is delegatecalled so `msg.sender` stays Kimap (the token's owner during mint).
/// Every other call is delegated to the implementation.
contract KinoAccountProxy {
    /// EIP-1967 implementation slot.
    bytes32 internal constant IMPLEMENTATION_SLOT = 0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc;
    /// keccak256("kinode-ts.account.kimap") - 1
    bytes32 internal constant KIMAP_SLOT = 0x513ea1d29dd8614a136bf89a5ce46dc301a6011f7fa0a5b28417fe2855ce1557;
    /// keccak256("kinode-ts.account.entry") - 1
    bytes32 internal constant ENTRY_SLOT = 0xa590c2b7977cddf615994bd452153233f8b97e2d5354752a3e40f744394520e7;

    error AlreadyInitialized();
    error NotKimap();

    constructor(bytes32 entry) {
        assembly {
            sstore(KIMAP_SLOT, caller())
            sstore(ENTRY_SLOT, entry)
        }
    }

    function initialize(address implementation, bytes calldata initialization) external {
        address kimap;
        address current;
        assembly {
            kimap := sload(KIMAP_SLOT)
            current := sload(IMPLEMENTATION_SLOT)
        }
        if (msg.sender != kimap) revert NotKimap();
        if (current != address(0)) revert AlreadyInitialized();
        assembly {
            sstore(IMPLEMENTATION_SLOT, implementation)
        }
        if (initialization.length > 0) {
            (bool ok, bytes memory ret) = implementation.delegatecall(initialization);
            if (!ok) {
                assembly {
                    revert(add(ret, 0x20), mload(ret))
                }
            }
        }
    }

    fallback() external payable {
        assembly {
            let impl := sload(IMPLEMENTATION_SLOT)
            calldatacopy(0, 0, calldatasize())
            let ok := delegatecall(gas(), impl, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            switch ok
            case 0 { revert(0, returndatasize()) }
            default { return(0, returndatasize()) }
        }
    }

    receive() external payable {}
}
