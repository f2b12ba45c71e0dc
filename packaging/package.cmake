# `cmake --build BUILD --target package` makes a .deb and an .rpm of what the
# install rules name. Name and version come from project(); the same version
# is what -V prints.
set(CPACK_GENERATOR DEB RPM)
set(CPACK_PACKAGE_NAME ${PROJECT_NAME})
set(CPACK_PACKAGE_VENDOR "The wg-rp developers")
set(CPACK_PACKAGE_CONTACT "The wg-rp developers <maintainers@wg-rp.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "WireGuard reverse proxy: publish services behind NAT on a public server")
set(CPACK_PACKAGE_DESCRIPTION "wg-rp publishes TCP services of machines behind NAT on ports of a
public server, with WireGuard as the only thing the server exposes. rps (server)
and rpc (client) bring up kernel WireGuard over netlink (wireguard-go as a
fallback), register port mappings over a small REST API inside the tunnel, and
relay connections with splice().")
# The units name the binaries' configured path: the package installs there.
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library packages found by dpkg-shlibdeps are added to this.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "init-system-helpers")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS wireguard-tools)
set(CPACK_DEBIAN_PACKAGE_SUGGESTS wireguard-go)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/packaging/deb/postinst
  ${PROJECT_SOURCE_DIR}/packaging/deb/prerm
  ${PROJECT_SOURCE_DIR}/packaging/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_RPM_FILE_NAME RPM-DEFAULT)
set(CPACK_RPM_PACKAGE_LICENSE MIT)
set(CPACK_RPM_PACKAGE_GROUP "System Environment/Daemons")
set(CPACK_RPM_PACKAGE_DESCRIPTION ${CPACK_PACKAGE_DESCRIPTION})
set(CPACK_PACKAGE_RELOCATABLE OFF)
# Fedora's debuginfo links would be strays here: the binaries are stripped.
# CPack 3.25 writes no Recommends: tag; this text goes into the preamble.
set(CPACK_RPM_SPEC_MORE_DEFINE "%define _build_id_links none\nRecommends: wireguard-tools")
# Library requirements are rpm's automatic soname dependencies.
set(CPACK_RPM_POST_INSTALL_SCRIPT_FILE ${PROJECT_SOURCE_DIR}/packaging/rpm/post)
set(CPACK_RPM_PRE_UNINSTALL_SCRIPT_FILE ${PROJECT_SOURCE_DIR}/packaging/rpm/preun)
set(CPACK_RPM_POST_UNINSTALL_SCRIPT_FILE ${PROJECT_SOURCE_DIR}/packaging/rpm/postun)
# Directories the system's own packages own.
set(CPACK_RPM_EXCLUDE_FROM_AUTO_FILELIST_ADDITION
  /usr/sbin /usr/lib/systemd /usr/lib/systemd/system /usr/share/man /usr/share/man/man8 /usr/share/doc)

include(CPack)
