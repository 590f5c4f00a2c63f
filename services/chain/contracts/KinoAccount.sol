// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

interface IKimapMint {
    function mint(address to, bytes calldata label, bytes calldata initialization, address implementation)
        external
        returns (address tba);
    function ownerOf(uint256 id) external view returns (address);
}

/// @title Account implementation for Kimap entries (kinode-ts).
/// @notice Runs behind a KinoAccountProxy: reads the proxy's slots for Kimap
/// and the entry. The entry's owner (the Kimap token's owner) may `execute`
/// a call (operation 0) or a delegatecall (operation 1), e.g. Multicall3
/// `aggregate` of `Kimap.note` calls so Kimap sees this account as sender.
/// No constructor state: safe to install with anvil_setCode.
contract KinoAccount {
    bytes32 internal constant KIMAP_SLOT = 0x513ea1d29dd8614a136bf89a5ce46dc301a6011f7fa0a5b28417fe2855ce1557;
    bytes32 internal constant ENTRY_SLOT = 0xa590c2b7977cddf615994bd452153233f8b97e2d5354752a3e40f744394520e7;

    error NotOwner();
    error UnsupportedOperation();

    function token() public view returns (uint256 chainId, address tokenContract, uint256 tokenId) {
        address kimap;
        bytes32 entry;
        assembly {
            kimap := sload(KIMAP_SLOT)
            entry := sload(ENTRY_SLOT)
        }
        return (block.chainid, kimap, uint256(entry));
    }

    function owner() public view returns (address) {
        (, address kimap, uint256 id) = token();
        return IKimapMint(kimap).ownerOf(id);
    }

    function execute(address to, uint256 value, bytes calldata data, uint8 operation)
        external
        payable
        returns (bytes memory result)
    {
        if (msg.sender != owner()) revert NotOwner();
        bool ok;
        if (operation == 0) {
            (ok, result) = to.call{value: value}(data);
        } else if (operation == 1) {
            (ok, result) = to.delegatecall(data);
        } else {
            revert UnsupportedOperation();
        }
        if (!ok) {
            assembly {
                revert(add(result, 0x20), mload(result))
            }
        }
    }

    receive() external payable {}
}

/// @title Zone minter account (kinode-ts): anyone may mint a child of the zone.
/// @notice The permissive, payable 4-argument `mint` of Kinode's minters:
/// forwards to Kimap, so Kimap sees this zone's account as the parent.
contract KinoMinterAccount is KinoAccount {
    function mint(address to, bytes calldata label, bytes calldata initialization, address implementation)
        external
        payable
        returns (address tba)
    {
        (, address kimap,) = token();
        return IKimapMint(kimap).mint(to, label, initialization, implementation);
    }
}
