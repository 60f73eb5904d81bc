# CMake package configuration for Cellar, installed by `make install` into
# <prefix>/lib/cmake/Cellar. Use:
#
#   find_package(Cellar 1.0 CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE Cellar::cellar)          # libcellar.so.1
#   target_link_libraries(app PRIVATE Cellar::cellar_static)   # libcellar.a
#
# The version is the C ABI version (CELLAR_ABI_VERSION, major.minor): any 1.x library serves a
# program asking for 1.0; a new major is never compatible. The package is relocatable: paths
# are found from this file's own location.
cmake_minimum_required(VERSION 3.13)
include(CMakeFindDependencyMacro)
# libcellar.a needs the threads library (and libm, libdl, librt on older C libraries).
find_dependency(Threads)

get_filename_component(_cellar_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)

if(NOT TARGET Cellar::cellar)
  add_library(Cellar::cellar SHARED IMPORTED)
  set_target_properties(Cellar::cellar PROPERTIES
    IMPORTED_LOCATION "${_cellar_prefix}/lib/libcellar.so.1"
    IMPORTED_SONAME "libcellar.so.1"
    INTERFACE_INCLUDE_DIRECTORIES "${_cellar_prefix}/include")
endif()

if(NOT TARGET Cellar::cellar_static)
  add_library(Cellar::cellar_static STATIC IMPORTED)
  set_target_properties(Cellar::cellar_static PROPERTIES
    IMPORTED_LOCATION "${_cellar_prefix}/lib/libcellar.a"
    IMPORTED_LINK_INTERFACE_LANGUAGES "C"
    INTERFACE_INCLUDE_DIRECTORIES "${_cellar_prefix}/include"
    INTERFACE_LINK_LIBRARIES "Threads::Threads;m;dl;rt")
endif()

foreach(_cellar_file "${_cellar_prefix}/include/cellar.h" "${_cellar_prefix}/lib/libcellar.so.1"
        "${_cellar_prefix}/lib/libcellar.a")
  if(NOT EXISTS "${_cellar_file}")
    set(Cellar_FOUND FALSE)
    set(Cellar_NOT_FOUND_MESSAGE "Cellar's package configuration names ${_cellar_file}, which is missing")
  endif()
endforeach()
unset(_cellar_file)
unset(_cellar_prefix)
